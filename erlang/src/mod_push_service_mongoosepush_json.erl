%% @doc The JSON writer of mod_push_service_mongoosepush: objects of
%% strings, integers and nested objects, written byte for byte as jiffy
%% (MongooseIM's encoder) writes the same Erlang map, so that MongoosePush
%% and anything comparing bodies see no difference.
%%
%% jiffy writes a small map (at most 32 keys, always the case here) in
%% descending term order of its keys (atoms before binaries in term order,
%% so binary keys come first); strings are UTF-8 with `"', `\' and control
%% characters escaped (`\b \f \n \r \t', others as `\u00XX' in uppercase
%% hex); `/', DEL and non-ASCII characters are written as they are.
-module(mod_push_service_mongoosepush_json).

-export([encode/1]).

-type key() :: atom() | binary().
-type value() :: binary() | integer() | object().
-type object() :: #{key() => value()}.
-export_type([object/0]).

%% @doc The JSON text of Object; `error({invalid_json, Term})' for a value
%% it cannot hold (e.g. a binary that is not UTF-8), as jiffy refuses it.
-spec encode(object()) -> binary().
encode(Object) when is_map(Object) ->
    iolist_to_binary(object(Object)).

-spec object(object()) -> iodata().
object(Object) ->
    Pairs = lists:reverse(lists:keysort(1, maps:to_list(Object))),
    [${, lists:join($,, [[string(key(K)), $:, value(V)] || {K, V} <- Pairs]), $}].

-spec key(key()) -> binary().
key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) when is_binary(K) -> K;
key(K) -> error({invalid_json, K}).

-spec value(value()) -> iodata().
value(V) when is_binary(V) -> string(V);
value(V) when is_integer(V) -> integer_to_binary(V);
value(V) when is_map(V) -> object(V);
value(V) -> error({invalid_json, V}).

-spec string(binary()) -> iodata().
string(S) ->
    case unicode:characters_to_binary(S, utf8, utf8) of
        S -> [$", escape(S, <<>>), $"];
        _ -> error({invalid_json, S})
    end.

-spec escape(binary(), binary()) -> binary().
escape(<<$", Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\\"">>);
escape(<<$\\, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\\\">>);
escape(<<$\b, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\b">>);
escape(<<$\f, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\f">>);
escape(<<$\n, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\n">>);
escape(<<$\r, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\r">>);
escape(<<$\t, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, "\\t">>);
escape(<<C, Rest/binary>>, Acc) when C < 16#20 ->
    Hex = list_to_binary(io_lib:format("~4.16.0B", [C])),
    escape(Rest, <<Acc/binary, "\\u", Hex/binary>>);
escape(<<C, Rest/binary>>, Acc) -> escape(Rest, <<Acc/binary, C>>);
escape(<<>>, Acc) -> Acc.

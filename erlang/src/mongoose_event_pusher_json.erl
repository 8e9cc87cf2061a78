%% @doc The JSON writer of the Erlang side (webhook bodies of the http
%% backend, MongoosePush requests; the other backends' JSON is written in
%% Rust). An object given as `{object, Pairs}' is written in that order (a
%% documented schema's order). A map is written as jiffy (MongooseIM's
%% encoder) writes a small map: keys in descending term order (atoms before
%% binaries in term order, so binary keys come first), so that a map gives
%% the bytes MongooseIM's jiffy gives on OTP 25. Values: binaries (UTF-8
%% text), integers, floats, `true', `false', `null', other atoms as strings,
%% lists as arrays, maps and pair lists as objects. Strings escape `"', `'
%% and control characters (`\b \f \n \r \t', others as `\u00XX' in
%% uppercase hex, as jiffy); `/', DEL and non-ASCII characters are written
%% as they are. Anything else (a pid, a tuple, a binary that is not UTF-8)
%% raises `error({invalid_json, Term})'.
-module(mongoose_event_pusher_json).

-export([encode/1]).

-type value() :: binary() | number() | atom() | [value()] | object().
-type object() :: #{atom() | binary() => value()} | {object, [{atom() | binary(), value()}]}.
-export_type([value/0, object/0]).

%% @doc The JSON text of Value.
-spec encode(value()) -> binary().
encode(Value) ->
    iolist_to_binary(value(Value)).

-spec value(value()) -> iodata().
value(V) when is_binary(V) -> string(V);
value(V) when is_integer(V) -> integer_to_binary(V);
value(V) when is_float(V) -> float_to_binary(V, [short]);
value(true) -> <<"true">>;
value(false) -> <<"false">>;
value(null) -> <<"null">>;
value(V) when is_atom(V) -> string(atom_to_binary(V, utf8));
value({object, Pairs}) when is_list(Pairs) -> object(Pairs);
value(V) when is_map(V) -> object(lists:reverse(lists:keysort(1, maps:to_list(V))));
value(V) when is_list(V) -> [$[, lists:join($,, [value(X) || X <- V]), $]];
value(V) -> error({invalid_json, V}).

-spec object([{atom() | binary(), value()}]) -> iodata().
object(Pairs) ->
    [${, lists:join($,, [[string(key(K)), $:, value(V)] || {K, V} <- Pairs]), $}].

-spec key(term()) -> binary().
key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) when is_binary(K) -> K;
key(K) -> error({invalid_json, K}).

-spec string(binary()) -> iodata().
string(S) ->
    case unicode:characters_to_binary(S, utf8, utf8) of
        S -> [$", escape(S, S, 0, 0, []), $"];
        _ -> error({invalid_json, S})
    end.

%% Runs of bytes that need no escaping are copied whole (sub-binaries).
-spec escape(binary(), binary(), non_neg_integer(), non_neg_integer(), iodata()) -> iodata().
escape(<<C, Rest/binary>>, Bin, Start, Len, Acc) when C >= 16#20, C =/= $", C =/= $\\ ->
    escape(Rest, Bin, Start, Len + 1, Acc);
escape(<<C, Rest/binary>>, Bin, Start, Len, Acc) ->
    escape(Rest, Bin, Start + Len + 1, 0, [Acc, binary_part(Bin, Start, Len), escaped(C)]);
escape(<<>>, Bin, 0, _Len, []) ->
    Bin;
escape(<<>>, Bin, Start, Len, Acc) ->
    [Acc, binary_part(Bin, Start, Len)].

-spec escaped(byte()) -> binary().
escaped($") -> <<"\\\"">>;
escaped($\\) -> <<"\\\\">>;
escaped($\b) -> <<"\\b">>;
escaped($\f) -> <<"\\f">>;
escaped($\n) -> <<"\\n">>;
escaped($\r) -> <<"\\r">>;
escaped($\t) -> <<"\\t">>;
escaped(C) -> iolist_to_binary(io_lib:format("\\u~4.16.0B", [C])).

%% @doc A user callback module for mod_event_pusher_http (MongooseIM's
%% arities): it posts every event, in both directions, except stanzas carrying
%% an `<ep-skip/>' child, with its own body and headers. The headers carry the
%% push_event metadata read from the accumulator, so a test can see what the
%% backend was given.
-module(ep_http_custom_callback).
-behaviour(mod_event_pusher_http).

-include("jlib.hrl").

-export([should_make_req/6, prepare_headers/7, prepare_body/7, encode_metadata/1]).

-spec should_make_req(mongoose_acc:t(), in | out, exml:element(), jid:jid(), jid:jid(),
                      map()) -> boolean().
should_make_req(_Acc, _Dir, #xmlel{children = Children}, _From, _To, _Opts) ->
    not lists:keymember(<<"ep-skip">>, #xmlel.name, Children).

-spec prepare_headers(mongoose_acc:t(), in | out, binary(), binary(), binary(), binary(),
                      map()) -> [{binary(), binary()}].
prepare_headers(Acc, Dir, _Host, _Message, _Sender, _Receiver, _Opts) ->
    Metadata = mongoose_acc:get(event_pusher, metadata, #{}, Acc),
    [{<<"content-type">>, <<"text/plain; charset=utf-8">>},
     {<<"x-ep-direction">>, atom_to_binary(Dir, utf8)},
     {<<"x-ep-metadata">>, encode_metadata(Metadata)}].

-spec prepare_body(mongoose_acc:t(), in | out, binary(), binary(), binary(), binary(),
                   map()) -> binary().
prepare_body(Acc, Dir, Host, Message, Sender, Receiver, _Opts) ->
    #xmlel{name = Name} = mongoose_acc:element(Acc),
    iolist_to_binary([atom_to_binary(Dir, utf8), $|, Name, $|, Sender, $@, Host,
                      $|, Receiver, $|, Message]).

%% @doc `k1=v1,k2=v2' in key order: a stable form for assertions.
-spec encode_metadata(map()) -> binary().
encode_metadata(Metadata) ->
    Pairs = [[atom_to_binary(K, utf8), $=, value(V)] || {K, V} <- lists:sort(maps:to_list(Metadata))],
    iolist_to_binary(lists:join($,, Pairs)).

value(V) when is_atom(V) -> atom_to_binary(V, utf8);
value(V) when is_binary(V) -> V;
value(V) when is_integer(V) -> integer_to_binary(V);
value(V) when is_float(V) -> float_to_binary(V, [short]).

%% @doc Default callbacks of `mod_event_pusher_http': POST every chat message
%% a local user sends (with a non-empty body) as a form-encoded body.
%%
%% A handler may name its own `callback_module' implementing the
%% `mod_event_pusher_http' behaviour to choose other messages, bodies or headers.
-module(mod_event_pusher_http_defaults).

-behaviour(mod_event_pusher_http).

-export([should_make_req/6, prepare_body/7, prepare_headers/7]).

%% @doc Only `in' messages of type `chat' whose `<body/>' has text.
-spec should_make_req(mongoose_acc:t(), in | out, exml:element(),
                      jid:jid(), jid:jid(), mod_event_pusher_http:handler_opts()) -> boolean().
should_make_req(_Acc, in, Packet, _From, _To, _Opts) ->
    Type = exml_query:attr(Packet, <<"type">>, <<>>),
    Body = exml_query:path(Packet, [{element, <<"body">>}, cdata], <<>>),
    Type =:= <<"chat">> andalso Body =/= <<>>;
should_make_req(_Acc, out, _Packet, _From, _To, _Opts) ->
    false.

%% @doc `author=<sender>&server=<host>&receiver=<receiver>&message=<text>',
%% each value encoded byte for byte as cowlib's `cow_qs:qs/1' does.
-spec prepare_body(mongoose_acc:t(), in | out, jid:lserver(), binary(),
                   jid:luser(), jid:luser(), mod_event_pusher_http:handler_opts()) -> binary().
prepare_body(_Acc, _Dir, Host, Message, Sender, Receiver, _Opts) ->
    form_urlencode([{<<"author">>, Sender},
                    {<<"server">>, Host},
                    {<<"receiver">>, Receiver},
                    {<<"message">>, Message}]).

-spec prepare_headers(mongoose_acc:t(), in | out, jid:lserver(), binary(),
                      jid:luser(), jid:luser(), mod_event_pusher_http:handler_opts()) ->
          [{binary(), binary()}].
prepare_headers(_Acc, _Dir, _Host, _Message, _Sender, _Receiver, _Opts) ->
    [{<<"content-type">>, <<"application/x-www-form-urlencoded">>}].

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec form_urlencode([{binary(), binary()}]) -> binary().
form_urlencode(Pairs) ->
    Encoded = [[encode(Key), $=, encode(Value)] || {Key, Value} <- Pairs],
    iolist_to_binary(lists:join($&, Encoded)).

%% Unreserved bytes are A-Z a-z 0-9 - . _ (so `~' and `*' are escaped, as
%% cowlib does); a space becomes `+'; every other byte `%XX' in upper case.
-spec encode(binary()) -> binary().
encode(Bin) ->
    << <<(encode_byte(Byte))/binary>> || <<Byte>> <= Bin >>.

-spec encode_byte(byte()) -> binary().
encode_byte(B) when B >= $A, B =< $Z; B >= $a, B =< $z; B >= $0, B =< $9;
                    B =:= $-; B =:= $.; B =:= $_ ->
    <<B>>;
encode_byte($\s) ->
    <<$+>>;
encode_byte(B) ->
    <<$%, (hex(B bsr 4)), (hex(B band 16#0F))>>.

-spec hex(0..15) -> byte().
hex(N) when N < 10 -> $0 + N;
hex(N) -> $A + N - 10.

%% @doc Default callbacks of `mod_event_pusher_http': POST every chat message
%% a local user sends (with a non-empty body) as a form-encoded body.
%%
%% A handler may name its own `callback_module' implementing the
%% `mod_event_pusher_http' behaviour to choose other messages, bodies or headers.
-module(mod_event_pusher_http_defaults).

-behaviour(mod_event_pusher_http).

-export([should_make_req/6, prepare_body/7, prepare_headers/7, form/4]).

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
    form(Host, Message, Sender, Receiver).

%% @doc The default body, for other modules (webhooks in the form format).
-spec form(jid:lserver(), binary(), jid:luser(), jid:luser()) -> binary().
form(Host, Message, Sender, Receiver) ->
    %% The keys need no encoding; one binary built in one go.
    <<"author=", (encode(Sender))/binary, "&server=", (encode(Host))/binary,
      "&receiver=", (encode(Receiver))/binary, "&message=", (encode(Message))/binary>>.

-spec prepare_headers(mongoose_acc:t(), in | out, jid:lserver(), binary(),
                      jid:luser(), jid:luser(), mod_event_pusher_http:handler_opts()) ->
          [{binary(), binary()}].
prepare_headers(_Acc, _Dir, _Host, _Message, _Sender, _Receiver, _Opts) ->
    [{<<"content-type">>, <<"application/x-www-form-urlencoded">>}].

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Unreserved bytes are A-Z a-z 0-9 - . _ (so `~' and `*' are escaped, as
%% cowlib does); a space becomes `+'; every other byte `%XX' in upper case.
%% Runs of unreserved bytes are copied whole (sub-binaries of the input),
%% and a value with nothing to escape is returned as it is: most of a chat
%% message needs no escaping, and copying byte by byte cost more than the
%% rest of the hook.
-spec encode(binary()) -> binary().
encode(Bin) ->
    encode(Bin, Bin, 0, 0, <<>>).

%% Rest: what is left to read; the current run of unreserved bytes is
%% binary_part(Bin, Start, Len); Acc holds what precedes it, encoded.
-spec encode(binary(), binary(), non_neg_integer(), non_neg_integer(), binary()) -> binary().
encode(<<C, Rest/binary>>, Bin, Start, Len, Acc)
  when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9; C =:= $-; C =:= $.; C =:= $_ ->
    encode(Rest, Bin, Start, Len + 1, Acc);
encode(<<$\s, Rest/binary>>, Bin, Start, Len, Acc) ->
    encode(Rest, Bin, Start + Len + 1, 0,
           <<Acc/binary, (binary_part(Bin, Start, Len))/binary, $+>>);
encode(<<C, Rest/binary>>, Bin, Start, Len, Acc) ->
    encode(Rest, Bin, Start + Len + 1, 0,
           <<Acc/binary, (binary_part(Bin, Start, Len))/binary, $%, (hex(C bsr 4)),
             (hex(C band 16#0F))>>);
encode(<<>>, Bin, 0, _Len, <<>>) ->
    Bin;
encode(<<>>, Bin, Start, Len, Acc) ->
    <<Acc/binary, (binary_part(Bin, Start, Len))/binary>>.

-spec hex(0..15) -> byte().
hex(N) when N < 10 -> $0 + N;
hex(N) -> $A + N - 10.

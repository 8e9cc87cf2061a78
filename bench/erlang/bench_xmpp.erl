%% The XMPP side every benchmark row drives: a user's chat message as
%% mongoose_c2s hands it to the `user_send_message` hook.
-module(bench_xmpp).

-export([chat_acc/2, send_message/2]).

-include("jlib.hrl").

%% A client's chat message from User@Host to bob@Host: no `from` attribute,
%% the sender in the accumulator, as c2s makes it.
-spec chat_acc(binary(), binary()) -> mongoose_acc:t().
chat_acc(User, Host) ->
    From = jid:make(User, Host, <<"bench">>),
    To = jid:make(<<"bob">>, Host, <<>>),
    Body = #xmlel{name = <<"body">>,
                  children = [#xmlcdata{content = <<"Hello from the benchmark">>}]},
    El = #xmlel{name = <<"message">>,
                attrs = #{<<"type">> => <<"chat">>, <<"to">> => <<"bob@", Host/binary>>},
                children = [Body]},
    mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                     file => ?FILE, line => ?LINE},
                       lserver => Host, host_type => Host, element => El,
                       from_jid => From, to_jid => To}).

%% Runs the hook as c2s does.
-spec send_message(binary(), mongoose_acc:t()) -> {ok, mongoose_acc:t()}.
send_message(Host, Acc) ->
    {ok, _} = gen_hook:run_fold(user_send_message, Host, Acc, c2s_params()).

%% What mongoose_c2s passes to its hooks; the event pusher does not read it.
c2s_params() ->
    #{c2s_data => undefined, c2s_state => session_established,
      event_type => undefined, event_content => undefined, reason => undefined}.

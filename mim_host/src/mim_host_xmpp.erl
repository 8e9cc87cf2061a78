%% @doc Test-only helpers over the XMPP pieces of the test host (not a
%% MongooseIM module): client sessions owned by the test process, IQs sent
%% as a client, and endpoints standing for remote services (e.g. a pubsub
%% service) that receive routed stanzas and answer IQs.
%%
%% Endpoint messages to its owner:
%%   `{ep_xmpp_stanza, Domain, From :: jid:jid(), To :: jid:jid(), El :: exml:element()}'
%% Responder (answers IQ requests only; called in the endpoint process):
%%   `fun((exml:element()) -> result | {result, [exml:element()]} |
%%                            {error, ErrorEl :: exml:element()} | no_reply)'
-module(mim_host_xmpp).

-behaviour(mongoose_packet_handler).

-export([login/1, login/2, logout/2, send_iq/3, send_iq/4, send/3,
         start_endpoint/2, set_responder/2, stop_endpoint/1]).
-export([process_packet/5]).

-include("jlib.hrl").
-include("mongoose.hrl").

-type responder() :: fun((exml:element()) -> result | {result, [exml:element()]}
                                                | {error, exml:element()} | no_reply).
-export_type([responder/0]).

%%--------------------------------------------------------------------
%% Clients
%%--------------------------------------------------------------------

%% @equiv login(JID, #{})
-spec login(jid:jid()) -> ejabberd_sm:sid().
login(JID) ->
    login(JID, #{}).

%% @doc Opens a session for the full JID owned by the calling process (it
%% receives `{route, Acc}' for what is delivered to it). Opts: `priority'
%% (default 0; `undefined' = no available presence), `info' (default #{}).
-spec login(jid:jid(), #{priority => ejabberd_sm:priority(), info => ejabberd_sm:info()}) ->
          ejabberd_sm:sid().
login(JID, Opts) ->
    SID = ejabberd_sm:make_new_sid(),
    _ = ejabberd_sm:open_session(host_type(JID), SID, JID, maps:get(priority, Opts, 0),
                                 maps:get(info, Opts, #{})),
    SID.

-spec logout(jid:jid(), ejabberd_sm:sid()) -> ok.
logout(JID, SID) ->
    _ = ejabberd_sm:close_session(new_acc(JID, JID, undefined), SID, JID, normal, #{}),
    ok.

%% @equiv send_iq(From, To, IQ, 5000)
-spec send_iq(jid:jid(), jid:jid(), exml:element()) -> {ok, exml:element()} | timeout.
send_iq(From, To, IQ) ->
    send_iq(From, To, IQ, 5000).

%% @doc Sends an IQ request (an `<iq/>' with an `id') as the client `From'
%% (a session of the calling process) and waits for the reply delivered to
%% that session, with `from'/`to' as the client gets it. Other messages stay in the mailbox (routed stanzas that
%% arrived meanwhile are put back at its end).
-spec send_iq(jid:jid(), jid:jid(), exml:element(), timeout()) ->
          {ok, exml:element()} | timeout.
send_iq(From, To, #xmlel{name = <<"iq">>} = IQ, Timeout) ->
    ID = exml_query:attr(IQ, <<"id">>),
    send(From, To, IQ),
    wait_for_reply(ID, erlang:monotonic_time(millisecond) + Timeout).

%% @doc Routes a stanza as the client `From' sends it: the accumulator
%% carries the session's id (`c2s', `origin_sid') when `From' has one.
-spec send(jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
send(From, To, El) ->
    Acc0 = new_acc(From, To, El),
    Acc = case ejabberd_sm:get_session(From) of
              offline -> Acc0;
              Session -> mongoose_acc:set_permanent(c2s, [{origin_sid, element(2, Session)},
                                                          {origin_jid, From}], Acc0)
          end,
    mongoose_router:route(Acc).

%%--------------------------------------------------------------------
%% Endpoints
%%--------------------------------------------------------------------

%% @doc Routes `Domain' to a new endpoint process (unlinked) that tells the
%% caller every stanza it gets and answers IQ requests with `Responder'.
-spec start_endpoint(jid:lserver(), responder()) -> {ok, pid()}.
start_endpoint(Domain, Responder) ->
    Owner = self(),
    Pid = spawn(fun() -> endpoint_loop(Domain, Owner, Responder) end),
    true = mongoose_router:register_route(Domain, mongoose_packet_handler:new(?MODULE,
                                                                              #{pid => Pid})),
    {ok, Pid}.

-spec set_responder(jid:lserver(), responder()) -> ok.
set_responder(Domain, Responder) ->
    call_endpoint(Domain, {set_responder, Responder}).

-spec stop_endpoint(jid:lserver()) -> ok.
stop_endpoint(Domain) ->
    Result = call_endpoint(Domain, stop),
    mongoose_router:unregister_route(Domain),
    Result.

%% @private the route's packet handler: hands the stanza to the endpoint
-spec process_packet(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element(), map()) ->
          mongoose_acc:t().
process_packet(Acc, From, To, El, #{pid := Pid}) ->
    Pid ! {route, From, To, El},
    Acc.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec endpoint_loop(jid:lserver(), pid(), responder()) -> ok.
endpoint_loop(Domain, Owner, Responder) ->
    receive
        {route, From, To, El} ->
            Owner ! {ep_xmpp_stanza, Domain, From, To, El},
            maybe_answer(From, To, El, Responder),
            endpoint_loop(Domain, Owner, Responder);
        {call, Caller, Ref, {set_responder, New}} ->
            Caller ! {Ref, ok},
            endpoint_loop(Domain, Owner, New);
        {call, Caller, Ref, stop} ->
            Caller ! {Ref, ok}
    end.

-spec maybe_answer(jid:jid(), jid:jid(), exml:element(), responder()) -> ok.
maybe_answer(From, To, #xmlel{name = <<"iq">>} = El, Responder) ->
    Type = exml_query:attr(El, <<"type">>),
    case Type =:= <<"get">> orelse Type =:= <<"set">> of
        false ->
            ok;
        true ->
            Reply = case Responder(El) of
                        result -> result_el(El, []);
                        {result, Children} -> result_el(El, Children);
                        {error, ErrorEl} -> jlib:make_error_reply(El, ErrorEl);
                        no_reply -> none
                    end,
            case Reply of
                none -> ok;
                #xmlel{} -> _ = mongoose_router:route(new_acc(To, From, Reply)), ok
            end
    end;
maybe_answer(_From, _To, _El, _Responder) ->
    ok.

-spec result_el(exml:element(), [exml:element()]) -> exml:element().
result_el(#xmlel{attrs = Attrs}, Children) ->
    #xmlel{name = <<"iq">>,
           attrs = #{<<"type">> => <<"result">>, <<"id">> => maps:get(<<"id">>, Attrs, <<>>)},
           children = Children}.

-spec call_endpoint(jid:lserver(), term()) -> ok.
call_endpoint(Domain, Request) ->
    case mongoose_router:lookup_route(Domain) of
        no_route ->
            ok;
        Handler ->
            #{pid := Pid} = mongoose_packet_handler:extra(Handler),
            Ref = monitor(process, Pid),
            Pid ! {call, self(), Ref, Request},
            receive
                {Ref, ok} -> demonitor(Ref, [flush]), ok;
                {'DOWN', Ref, process, Pid, _} -> ok
            end
    end.

-spec wait_for_reply(binary(), integer()) -> {ok, exml:element()} | timeout.
wait_for_reply(ID, Deadline) ->
    wait_for_reply(ID, Deadline, []).

%% Other stanzas delivered meanwhile are put back in the mailbox afterwards.
-spec wait_for_reply(binary(), integer(), [term()]) -> {ok, exml:element()} | timeout.
wait_for_reply(ID, Deadline, Others) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {route, #{mongoose_acc := true} = Acc} = Msg ->
            El = mongoose_acc:element(Acc),
            case El of
                #xmlel{name = <<"iq">>} when is_map_key(<<"id">>, El#xmlel.attrs) ->
                    case exml_query:attr(El, <<"id">>) of
                        ID ->
                            requeue(Others),
                            %% as the client reads it: c2s writes from/to of the acc
                            {ok, jlib:replace_from_to(mongoose_acc:from_jid(Acc),
                                                      mongoose_acc:to_jid(Acc), El)};
                        _ -> wait_for_reply(ID, Deadline, [Msg | Others])
                    end;
                _ ->
                    wait_for_reply(ID, Deadline, [Msg | Others])
            end
    after Left ->
            requeue(Others),
            timeout
    end.

-spec requeue([term()]) -> ok.
requeue(Msgs) ->
    lists:foreach(fun(Msg) -> self() ! Msg end, lists:reverse(Msgs)).

-spec new_acc(jid:jid(), jid:jid(), exml:element() | undefined) -> mongoose_acc:t().
new_acc(From, To, El) ->
    Params = #{location => ?LOCATION, lserver => From#jid.lserver,
               host_type => host_type(From)},
    mongoose_acc:new(case El of
                         undefined -> Params;
                         _ -> Params#{element => El, from_jid => From, to_jid => To}
                     end).

-spec host_type(jid:jid()) -> mongooseim:host_type() | undefined.
host_type(#jid{lserver = LServer}) ->
    case mongoose_domain_api:get_domain_host_type(LServer) of
        {ok, HostType} -> HostType;
        {error, not_found} -> undefined
    end.

%% @doc The test host's `ejabberd_local': delivery to a local domain and the
%% server's own IQs, as in MongooseIM.
%%  - To a user JID: `ejabberd_sm:route/4'.
%%  - To the server JID: an IQ request goes to the handler registered for its
%%    namespace (`register_iq_handler/3' or `gen_iq_handler' for the domain's
%%    host type, component `ejabberd_local'), else `feature-not-implemented';
%%    an IQ result/error goes to the callback of `route_iq/5,6' with its id.
%%  - To `domain/resource': bounced `item-not-found' (unless a reply).
%% `route_iq/5,6' sends an IQ request with a fresh id and calls
%% `Callback(From, To, Acc, IQ)' with the reply, or
%% `Callback(undefined, undefined, undefined, timeout)' after the timeout
%% (32 s in MongooseIM; `set_iq_timeout/1' shortens the default in tests).
-module(ejabberd_local).

-behaviour(mongoose_packet_handler).
-behaviour(gen_iq_component).

-export([process_packet/5, route_iq/5, route_iq/6, process_iq_reply/4,
         register_iq_handler/3, unregister_iq_handler/2, register_host/1, unregister_host/1,
         sync/0, do_route/4, get_iq_callback/1]).
%% test host: the component lookup and the default IQ timeout
-export([lookup_iq_handler/2, set_iq_timeout/1, iq_timeout/0, ensure_tables/0]).

-include("jlib.hrl").
-include("mongoose.hrl").

-define(IQ_TIMEOUT, 32000).
-define(IQTABLE, local_iqtable).
-define(IQRESPONSE, local_iqresponse).
-define(TIMEOUT_KEY, {?MODULE, iq_timeout}).

-type callback() :: fun((jid:jid() | undefined, jid:jid() | undefined,
                         mongoose_acc:t() | undefined, jlib:iq() | timeout) -> any()).
-export_type([callback/0]).

-spec process_packet(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element(), map()) ->
          mongoose_acc:t().
process_packet(Acc, From, To, El, _Extra) ->
    Meta = #{from_jid => jid:to_binary(From), to_jid => jid:to_binary(To)},
    keep_acc_on_crash(fun() -> do_route(Acc, From, To, El) end, Acc, Meta).

%% A crash while delivering must not take the router's caller down: the
%% stanza is lost and logged, the accumulator goes on.
-spec keep_acc_on_crash(fun(() -> mongoose_acc:t()), mongoose_acc:t(), map()) ->
          mongoose_acc:t().
keep_acc_on_crash(Deliver, Acc, LogMeta) ->
    try Deliver()
    catch Class:Reason:Stacktrace ->
            ?LOG_ERROR(LogMeta#{what => routing_error, class => Class, reason => Reason,
                                stacktrace => Stacktrace}),
            Acc
    end.

-spec do_route(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
do_route(Acc, From, #jid{luser = LUser, lresource = LResource} = To, El) ->
    case {LUser, LResource, El} of
        {<<>>, <<>>, #xmlel{name = <<"iq">>}} ->
            process_iq(Acc, From, To, El);
        {<<>>, <<>>, _} ->
            Acc;
        {<<>>, _, _} ->
            case mongoose_acc:stanza_type(Acc) of
                Type when Type =:= <<"error">>; Type =:= <<"result">> -> Acc;
                _ -> mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:item_not_found())
            end;
        _ ->
            ejabberd_sm:route(From, To, Acc, El)
    end.

-spec route_iq(jid:jid(), jid:jid(), mongoose_acc:t(), jlib:iq(), callback()) ->
          mongoose_acc:t().
route_iq(From, To, Acc, IQ, Callback) ->
    route_iq(From, To, Acc, IQ, Callback, undefined).

-spec route_iq(jid:jid(), jid:jid(), mongoose_acc:t(), jlib:iq(), callback(),
               undefined | pos_integer()) -> mongoose_acc:t().
route_iq(From, To, Acc, #iq{} = IQ, Callback, Timeout) when is_function(Callback, 4) ->
    Stanza = jlib:iq_to_xml(await_reply(IQ, Callback, Timeout)),
    mongoose_router:route(mongoose_acc:update(From, To, Stanza, Acc)).

%% Only a request (get/set) is answered: it gets a fresh id, under which the
%% callback waits for the reply; a result or error is sent as it is.
-spec await_reply(jlib:iq(), callback(), undefined | pos_integer()) -> jlib:iq().
await_reply(#iq{type = Type} = IQ, Callback, Timeout) when Type =:= get; Type =:= set ->
    Id = make_iq_id(),
    register_iq_response_handler(Id, Callback, Timeout),
    IQ#iq{id = Id};
await_reply(IQ, _Callback, _Timeout) ->
    IQ.

%% @doc Calls the callback waiting for the reply's id; other replies are dropped.
-spec process_iq_reply(jid:jid(), jid:jid(), mongoose_acc:t(), jlib:iq()) -> mongoose_acc:t().
process_iq_reply(From, To, Acc, #iq{id = Id} = IQ) ->
    deliver_reply(get_iq_callback(Id), From, To, Acc, IQ).

%% A reply nobody waits for (late, or never asked) is only logged.
-spec deliver_reply({ok, callback()} | error, jid:jid(), jid:jid(), mongoose_acc:t(),
                    jlib:iq()) -> mongoose_acc:t().
deliver_reply({ok, Callback}, From, To, Acc, IQ) ->
    Callback(From, To, Acc, IQ);
deliver_reply(error, From, _To, Acc, #iq{id = Id, type = Type}) ->
    ?LOG_INFO(#{what => dropped_iq_reply, iq_id => Id, iq_type => Type,
                from_jid => jid:to_binary(From)}),
    Acc.

%% @doc Takes the callback of a pending IQ (cancelling its timeout).
-spec get_iq_callback(binary()) -> {ok, callback()} | error.
get_iq_callback(ID) ->
    ensure_tables(),
    case ets:take(?IQRESPONSE, ID) of
        [{ID, Callback, Timer}] ->
            Timer ! cancel,
            {ok, Callback};
        [] ->
            error
    end.

-include("mim_host_iq_handlers.hrl").

%% @doc Routes a domain here (MongooseIM does it when a domain is added).
-spec register_host(jid:server()) -> ok.
register_host(Host) ->
    Handler = mongoose_packet_handler:new(?MODULE),
    expect_true(mongoose_router:register_route(Host, Handler)).

-spec unregister_host(jid:server()) -> ok.
unregister_host(Host) ->
    expect_true(mongoose_router:unregister_route(Host)).

-spec expect_true(true) -> ok.
expect_true(true) ->
    ok.

%% @doc Nothing is queued in the test host: registrations take effect at once.
-spec sync() -> ok.
sync() ->
    ok.

%% @doc Test host: the timeout of `route_iq/5' (and `route_iq/6' with
%% `undefined'), in ms; MongooseIM's is 32000.
-spec set_iq_timeout(pos_integer()) -> ok.
set_iq_timeout(Ms) when is_integer(Ms), Ms > 0 ->
    persistent_term:put(?TIMEOUT_KEY, Ms).

-spec iq_timeout() -> pos_integer().
iq_timeout() ->
    persistent_term:get(?TIMEOUT_KEY, ?IQ_TIMEOUT).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec process_iq(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
process_iq(Acc0, From, To, El) ->
    case mongoose_iq:info(Acc0) of
        {#iq{type = Type} = IQ, Acc} when Type =:= result; Type =:= error ->
            process_iq_reply(From, To, Acc, IQ);
        {#iq{xmlns = XMLNS} = IQ, Acc} ->
            case gen_iq_component:find_handler(?MODULE, To#jid.lserver, XMLNS) of
                {ok, Handler} ->
                    gen_iq_component:handle(Handler, Acc, From, To, IQ);
                error ->
                    Text = <<"Local server does not implement this feature">>,
                    mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:feature_not_implemented(Text))
            end;
        {_, Acc} ->
            mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:bad_request())
    end.

-spec register_iq_response_handler(binary(), callback(), undefined | pos_integer()) -> ok.
register_iq_response_handler(Id, Callback, TimeoutOrDefault) ->
    ensure_tables(),
    Ms = effective_timeout(TimeoutOrDefault),
    %% The test host has no ejabberd_local server to own timers, so each
    %% pending IQ gets a small process that fires or is cancelled.
    Timer = spawn(fun() -> wait_for_timeout(Id, Ms) end),
    true = ets:insert(?IQRESPONSE, {Id, Callback, Timer}),
    ok.

-spec effective_timeout(undefined | pos_integer()) -> pos_integer().
effective_timeout(undefined) -> iq_timeout();
effective_timeout(Ms) when is_integer(Ms), Ms > 0 -> Ms.

-spec wait_for_timeout(binary(), pos_integer()) -> ok.
wait_for_timeout(ID, Timeout) ->
    receive
        cancel -> ok
    after Timeout ->
            try get_iq_callback(ID) of
                {ok, Callback} -> _ = Callback(undefined, undefined, undefined, timeout), ok;
                error -> ok
            catch
                error:badarg -> ok  % the host was stopped
            end
    end.

-spec make_iq_id() -> binary().
make_iq_id() ->
    <<"ep_", (binary:encode_hex(crypto:strong_rand_bytes(8)))/binary>>.

-spec ensure_tables() -> ok.
ensure_tables() ->
    mim_host_lib:ensure_tables([{?IQRESPONSE, [named_table, public, set]},
                            {?IQTABLE, [named_table, public, set, {read_concurrency, true}]}]).

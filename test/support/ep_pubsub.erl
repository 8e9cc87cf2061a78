%% @doc A test-controlled XMPP pubsub service: the route of a domain (e.g.
%% `pubsub.localhost') is registered to it, so stanzas the server routes there
%% arrive here. It records every IQ it receives and answers each `set' with
%% the reply the test chose: a result, an error of type cancel, wait or
%% modify, or nothing at all (the sender then times out).
-module(ep_pubsub).
-behaviour(gen_server).

-include("jlib.hrl").

%% API
-export([start/1, stop/1, set_reply/2, received/1, publishes/1, wait_for_publishes/3,
         routing_pids/1]).

%% mongoose_packet_handler callback (runs in the routing process)
-export([process_packet/5]).

%% gen_server callbacks
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type reply() :: result | {error, cancel | wait | modify} | no_reply.
%% One routed stanza as it arrived: from, to and the element.
-type received() :: {jid:jid(), jid:jid(), exml:element()}.
-export_type([reply/0, received/0]).

-record(state, {domain :: binary(), reply = result :: reply(), received = [] :: [received()],
                routed_by = [] :: [pid()]}).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Starts the service for Domain (unlinked: it outlives the caller's
%% case setup) with replies `result'.
-spec start(binary()) -> {ok, pid()}.
start(Domain) ->
    {ok, Pid} = gen_server:start(?MODULE, Domain, []),
    mongoose_router:register_route(Domain,
                                   mongoose_packet_handler:new(?MODULE, #{server => Pid})),
    {ok, Pid}.

-spec stop(pid()) -> ok.
stop(Pid) ->
    Domain = gen_server:call(Pid, domain),
    mongoose_router:unregister_route(Domain),
    gen_server:stop(Pid).

%% @doc How the IQs that arrive from now on are answered.
-spec set_reply(pid(), reply()) -> ok.
set_reply(Pid, Reply) ->
    gen_server:call(Pid, {set_reply, Reply}).

%% @doc Everything received, oldest first.
-spec received(pid()) -> [received()].
received(Pid) ->
    gen_server:call(Pid, received).

%% @doc The pubsub publish IQs received, oldest first.
-spec publishes(pid()) -> [received()].
publishes(Pid) ->
    [R || {_, _, El} = R <- received(Pid),
          exml_query:path(El, [{element_with_ns, <<"pubsub">>, ?NS_PUBSUB},
                               {element, <<"publish">>}]) =/= undefined].

%% @doc The processes that routed each stanza here, oldest first (to check
%% who did the routing, e.g. never the user's process).
-spec routing_pids(pid()) -> [pid()].
routing_pids(Pid) ->
    gen_server:call(Pid, routing_pids).

%% @doc Waits until at least N publish IQs have arrived and returns them.
-spec wait_for_publishes(pid(), non_neg_integer(), timeout()) -> [received()].
wait_for_publishes(Pid, N, TimeoutMs) ->
    ep_wait:for(fun() -> publishes(Pid) end, fun(L) -> length(L) >= N end, TimeoutMs,
                #{name => {pubsub_publishes, N}}).

%%--------------------------------------------------------------------
%% Packet handler
%%--------------------------------------------------------------------

%% @doc Records the stanza and, for a get/set IQ, routes back the chosen
%% reply from the address it was sent to.
-spec process_packet(mongoose_acc:t(), jid:jid(), jid:jid(), exml:element(), map()) ->
          mongoose_acc:t().
process_packet(Acc, From, To, El, #{server := Pid}) ->
    Reply = gen_server:call(Pid, {received, {From, To, El}, self()}),
    Type = exml_query:attr(El, <<"type">>),
    case {El, Type, Reply} of
        {#xmlel{name = <<"iq">>}, _, no_reply} -> ok;
        {#xmlel{name = <<"iq">>}, T, _} when T =:= <<"set">>; T =:= <<"get">> ->
            route(To, From, reply_element(El, To, From, Reply));
        _ -> ok
    end,
    Acc.

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init(binary()) -> {ok, #state{}}.
init(Domain) ->
    {ok, #state{domain = Domain}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({received, R, By}, _From,
            #state{received = Rs, routed_by = Pids, reply = Reply} = S) ->
    {reply, Reply, S#state{received = [R | Rs], routed_by = [By | Pids]}};
handle_call(routing_pids, _From, #state{routed_by = Pids} = S) ->
    {reply, lists:reverse(Pids), S};
handle_call({set_reply, Reply}, _From, S) ->
    {reply, ok, S#state{reply = Reply}};
handle_call(received, _From, #state{received = Rs} = S) ->
    {reply, lists:reverse(Rs), S};
handle_call(domain, _From, #state{domain = Domain} = S) ->
    {reply, Domain, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(_Msg, S) ->
    {noreply, S}.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

reply_element(#xmlel{attrs = Attrs}, From, To, result) ->
    #xmlel{name = <<"iq">>, attrs = reply_attrs(Attrs, From, To, <<"result">>)};
reply_element(#xmlel{attrs = Attrs} = El, From, To, {error, ErrorType}) ->
    Condition = case ErrorType of
                    cancel -> <<"item-not-found">>;
                    wait -> <<"resource-constraint">>;
                    modify -> <<"bad-request">>
                end,
    Error = #xmlel{name = <<"error">>, attrs = #{<<"type">> => atom_to_binary(ErrorType, utf8)},
                   children = [#xmlel{name = Condition, attrs = #{<<"xmlns">> => ?NS_STANZAS}}]},
    #xmlel{name = <<"iq">>, attrs = reply_attrs(Attrs, From, To, <<"error">>),
           children = El#xmlel.children ++ [Error]}.

reply_attrs(Attrs, From, To, Type) ->
    #{<<"id">> => maps:get(<<"id">>, Attrs, <<>>), <<"type">> => Type,
      <<"from">> => jid:to_binary(From), <<"to">> => jid:to_binary(To)}.

route(From, To, El) ->
    Acc = mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                           line => ?LINE, file => ?FILE},
                             lserver => From#jid.lserver, host_type => undefined,
                             element => El, from_jid => From, to_jid => To}),
    mongoose_router:route(Acc).

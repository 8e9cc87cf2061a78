%% @doc The test host's `mongoose_router': `route/1' delivers the stanza of
%% an accumulator (`from_jid', `to_jid', `element') by the destination's
%% domain:
%%  1. a route registered with `register_route/2' (MongooseIM's external
%%     components and services; tests register their endpoints here, see
%%     `mim_host_xmpp'),
%%  2. a local domain (`hosts', dynamic domains of `mongoose_domain_api'):
%%     `ejabberd_local',
%%  3. else no route (MongooseIM would try s2s): logged, and a request
%%     bounced to its sender with `remote-server-not-found' (type cancel), as
%%     MongooseIM's s2s does when the remote server cannot be reached.
%% Local delivery (1 and 2) runs `filter_local_packet' first, as
%% `mongoose_local_delivery' does (`drop' drops the stanza).
-module(mongoose_router).

-export([route/1, register_route/2, unregister_route/1, lookup_route/1,
         is_registered_route/1, get_all_domains/0]).
%% test host: ejabberd_sup creates the table when it starts
-export([ensure_table/0]).

-include("jlib.hrl").
-include("mongoose.hrl").

-define(TABLE, mongoose_router_routes).

-spec route(mongoose_acc:t()) -> mongoose_acc:t().
route(Acc) ->
    From = mongoose_acc:from_jid(Acc),
    To = mongoose_acc:to_jid(Acc),
    El = mongoose_acc:element(Acc),
    case lookup_route(To#jid.lserver) of
        no_route ->
            no_route(From, To, Acc, El);
        Handler ->
            deliver(Handler, From, To, Acc, El)
    end.

-spec register_route(jid:server(), mongoose_packet_handler:t()) ->
          true | {error, invalid_domain, jid:server()}.
register_route(Domain, Handler) ->
    case jid:nameprep(Domain) of
        error ->
            {error, invalid_domain, Domain};
        LDomain ->
            ensure_table(),
            ets:insert(?TABLE, {LDomain, Handler})
    end.

-spec unregister_route(jid:server()) -> true | {error, invalid_domain, jid:server()}.
unregister_route(Domain) ->
    case jid:nameprep(Domain) of
        error ->
            {error, invalid_domain, Domain};
        LDomain ->
            ensure_table(),
            ets:delete(?TABLE, LDomain)
    end.

%% @doc The registered handler, else `ejabberd_local' for a static host.
-spec lookup_route(jid:lserver()) -> no_route | mongoose_packet_handler:t().
lookup_route(LDomain) ->
    ensure_table(),
    case ets:lookup(?TABLE, LDomain) of
        [{_, Handler}] ->
            Handler;
        [] ->
            case lists:member(LDomain, mongoose_config:get_opt(hosts, [])) of
                true -> mongoose_packet_handler:new(ejabberd_local);
                false -> no_route
            end
    end.

-spec is_registered_route(jid:lserver()) -> boolean().
is_registered_route(LDomain) ->
    lookup_route(LDomain) =/= no_route.

-spec get_all_domains() -> [jid:lserver()].
get_all_domains() ->
    ensure_table(),
    lists:usort(mongoose_config:get_opt(hosts, []) ++
                    ets:select(?TABLE, [{{'$1', '_'}, [], ['$1']}])).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec deliver(mongoose_packet_handler:t(), jid:jid(), jid:jid(), mongoose_acc:t(),
              exml:element()) -> mongoose_acc:t().
deliver(Handler, From, To, Acc, El) ->
    Filtered = case mongoose_acc:host_type(Acc) of
                   undefined -> {From, To, Acc, El};
                   _ -> mongoose_hooks:filter_local_packet({From, To, Acc, El})
               end,
    case Filtered of
        drop ->
            Acc;
        {From1, To1, Acc1, El1} ->
            mongoose_packet_handler:process(Handler, Acc1, From1, To1, El1)
    end.

-spec no_route(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
no_route(From, To, Acc, El) ->
    ?LOG_WARNING(#{what => no_route_found, from_jid => jid:to_binary(From),
                   to_jid => jid:to_binary(To), exml_packet => El}),
    case exml_query:attr(El, <<"type">>) of
        Type when Type =:= <<"error">>; Type =:= <<"result">> ->
            Acc;
        _ ->
            mim_host_lib:bounce(Acc, From, To, El, mongoose_xmpp_errors:remote_server_not_found())
    end.

-spec ensure_table() -> ok.
ensure_table() ->
    mim_host_lib:ensure_tables([{?TABLE, [named_table, public, set, {read_concurrency, true}]}]).

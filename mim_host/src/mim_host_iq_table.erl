%% The IQ handler table that ejabberd_local (a domain's own IQs) and
%% ejabberd_sm (IQs to a user's bare JID) each keep: handlers by namespace
%% and domain, in an ETS table the caller names and has created.
-module(mim_host_iq_table).

-export([register/4, unregister/3, lookup/3]).

-spec register(ets:tab(), jid:server(), binary(), mongoose_iq_handler:t()) -> ok.
register(Table, Domain, XMLNS, IQHandler) ->
    true = ets:insert(Table, {{XMLNS, Domain}, IQHandler}),
    ok.

-spec unregister(ets:tab(), jid:server(), binary()) -> ok.
unregister(Table, Domain, XMLNS) ->
    case ets:take(Table, {XMLNS, Domain}) of
        [{_, IQHandler}] -> mongoose_iq_handler:delete(IQHandler);
        [] -> ok
    end.

-spec lookup(ets:tab(), jid:lserver(), binary()) -> {ok, mongoose_iq_handler:t()} | error.
lookup(Table, Domain, XMLNS) ->
    case ets:lookup(Table, {XMLNS, Domain}) of
        [{_, IQHandler}] -> {ok, IQHandler};
        [] -> error
    end.

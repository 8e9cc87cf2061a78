%% register_iq_handler/3, unregister_iq_handler/2 and lookup_iq_handler/2,
%% which ejabberd_local (a domain's own IQs) and ejabberd_sm (IQs to a user's
%% bare JID) both have in MongooseIM. The including module defines ?IQTABLE
%% and ensure_tables/0, which creates that table.

-spec register_iq_handler(jid:server(), binary(), mongoose_iq_handler:t()) -> ok.
register_iq_handler(Domain, XMLNS, IQHandler) ->
    ensure_tables(),
    mim_host_iq_table:register(?IQTABLE, Domain, XMLNS, IQHandler).

-spec unregister_iq_handler(jid:server(), binary()) -> ok.
unregister_iq_handler(Domain, XMLNS) ->
    ensure_tables(),
    mim_host_iq_table:unregister(?IQTABLE, Domain, XMLNS).

-spec lookup_iq_handler(jid:lserver(), binary()) -> {ok, mongoose_iq_handler:t()} | error.
lookup_iq_handler(Domain, XMLNS) ->
    ensure_tables(),
    mim_host_iq_table:lookup(?IQTABLE, Domain, XMLNS).

%% @doc The test host's `gen_iq_component': the IQ-handling components
%% (`ejabberd_local' for the server's JID, `ejabberd_sm' for users' bare
%% JIDs) and the lookup of the handler for a namespace at a domain.
-module(gen_iq_component).

-export([handle/5, register_iq_handler/4, unregister_iq_handler/3]).
%% test host: used by the components
-export([find_handler/3]).

-callback register_iq_handler(Domain :: jid:lserver(), Namespace :: binary(),
                              IQHandler :: mongoose_iq_handler:t()) -> ok.
-callback unregister_iq_handler(Domain :: jid:lserver(), Namespace :: binary()) -> ok.

-spec handle(mongoose_iq_handler:t(), mongoose_acc:t(), jid:jid(), jid:jid(), jlib:iq()) ->
          mongoose_acc:t().
handle(IQHandler, Acc, From, To, IQ) ->
    mongoose_iq_handler:process_iq(IQHandler, Acc, From, To, IQ).

-spec register_iq_handler(module(), jid:lserver(), binary(), mongoose_iq_handler:t()) -> ok.
register_iq_handler(Component, Domain, Namespace, IQHandler) ->
    Component:register_iq_handler(Domain, Namespace, IQHandler).

-spec unregister_iq_handler(module(), jid:lserver(), binary()) -> ok.
unregister_iq_handler(Component, Domain, Namespace) ->
    Component:unregister_iq_handler(Domain, Namespace).

%% @doc The handler a component has for `Namespace' at `Domain': one
%% registered for the domain itself, else one added for the domain's host
%% type with `gen_iq_handler:add_iq_handler_for_domain/6'.
-spec find_handler(module(), jid:lserver(), binary()) -> {ok, mongoose_iq_handler:t()} | error.
find_handler(Component, Domain, Namespace) ->
    case Component:lookup_iq_handler(Domain, Namespace) of
        {ok, Handler} ->
            {ok, Handler};
        error ->
            case mongoose_domain_api:get_domain_host_type(Domain) of
                {ok, HostType} -> gen_iq_handler:lookup(HostType, Namespace, Component);
                {error, not_found} -> error
            end
    end.

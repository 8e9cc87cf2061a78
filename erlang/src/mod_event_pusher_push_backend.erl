%% @doc Storage of push subscriptions: the behaviour a store implements and
%% the calls mod_event_pusher_push makes, sent to the store the `backend'
%% option names (`mod_event_pusher_push_<backend>').
%%
%% Two stores, MongooseIM's: mnesia and rdbms (which needs an rdbms pool).
-module(mod_event_pusher_push_backend).

-export([check_supported/2, init/2, enable/5, disable/2, disable/4,
         get_publish_services/2, remove_domain/2]).

-callback init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.

-callback enable(mongooseim:host_type(), UserJID :: jid:jid(), PubSubJID :: jid:jid(),
                 Node :: mod_event_pusher_push:pubsub_node(),
                 Form :: mod_event_pusher_push:form()) -> ok | {error, term()}.

-callback disable(mongooseim:host_type(), UserJID :: jid:jid()) -> ok | {error, term()}.

-callback disable(mongooseim:host_type(), UserJID :: jid:jid(), PubSubJID :: jid:jid(),
                  Node :: mod_event_pusher_push:pubsub_node() | undefined) ->
    ok | {error, term()}.

-callback get_publish_services(mongooseim:host_type(), UserJID :: jid:jid()) ->
    {ok, [mod_event_pusher_push:publish_service()]} | {error, term()}.

-callback remove_domain(mongooseim:host_type(), jid:lserver()) -> ok.

%% @doc ok when the host type can run the backend; otherwise raises an error
%% that says what is missing, so that the module's start fails with it.
%% (ours) MongooseIM starts an rdbms store without a pool and fails each
%% query later; we refuse the start instead.
-spec check_supported(mongooseim:host_type(), atom()) -> ok.
check_supported(_HostType, mnesia) ->
    ok;
check_supported(HostType, rdbms) ->
    case has_rdbms_pool(HostType) of
        true ->
            ok;
        false ->
            error(#{what => push_rdbms_pool_missing, host_type => HostType,
                    text => <<"mod_event_pusher_push: backend = \"rdbms\" needs an "
                              "[outgoing_pools.rdbms.default] pool (global or for this "
                              "host type)">>})
    end;
check_supported(HostType, Backend) ->
    error(#{what => push_backend_not_supported, host_type => HostType, backend => Backend,
            text => <<"mod_event_pusher_push: unknown backend">>}).

-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(HostType, Opts) ->
    to_store(HostType, init, [Opts]).

-spec enable(mongooseim:host_type(), jid:jid(), jid:jid(), mod_event_pusher_push:pubsub_node(),
             mod_event_pusher_push:form()) -> ok | {error, term()}.
enable(HostType, User, PubSub, Node, Form) ->
    to_store(HostType, enable, [User, PubSub, Node, Form]).

-spec disable(mongooseim:host_type(), jid:jid()) -> ok | {error, term()}.
disable(HostType, User) ->
    to_store(HostType, disable, [User]).

-spec disable(mongooseim:host_type(), jid:jid(), jid:jid(),
              mod_event_pusher_push:pubsub_node() | undefined) -> ok | {error, term()}.
disable(HostType, User, PubSub, Node) ->
    to_store(HostType, disable, [User, PubSub, Node]).

-spec get_publish_services(mongooseim:host_type(), jid:jid()) ->
          {ok, [mod_event_pusher_push:publish_service()]} | {error, term()}.
get_publish_services(HostType, User) ->
    to_store(HostType, get_publish_services, [User]).

-spec remove_domain(mongooseim:host_type(), jid:lserver()) -> ok.
remove_domain(HostType, Domain) ->
    to_store(HostType, remove_domain, [Domain]).

%% Every store callback takes the host type first.
-spec to_store(mongooseim:host_type(), atom(), [term()]) -> term().
to_store(HostType, Callback, Args) ->
    #{backend := Backend} = gen_mod:get_module_opts(HostType, mod_event_pusher_push),
    erlang:apply(store_module(Backend), Callback, [HostType | Args]).

%% The pool mongoose_rdbms queries for the host type: tag `default', in
%% the host type's own pools or among the global ones (scope `global' or
%% `host_type').
-spec has_rdbms_pool(mongooseim:host_type()) -> boolean().
has_rdbms_pool(HostType) ->
    Global = [Scope || #{type := rdbms, tag := default, scope := Scope}
                           <- mongoose_config:get_opt(outgoing_pools, []),
                       lists:member(Scope, [global, host_type, HostType])],
    Own = [Pool || #{type := rdbms, tag := default} = Pool
                       <- mongoose_config:get_opt({outgoing_pools, HostType}, [])],
    Global ++ Own =/= [].

%% Named, not built: a node that loads modules on demand may not have
%% loaded the store yet, so its atom need not exist.
-spec store_module(mnesia | rdbms) -> module().
store_module(mnesia) -> mod_event_pusher_push_mnesia;
store_module(rdbms) -> mod_event_pusher_push_rdbms.

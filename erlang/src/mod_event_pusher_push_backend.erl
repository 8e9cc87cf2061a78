%% @doc Storage of push subscriptions: the behaviour a store implements and
%% the calls mod_event_pusher_push makes, sent to the store the `backend'
%% option names (`mod_event_pusher_push_<backend>').
%%
%% Only the mnesia store exists in this build; `backend = "rdbms"' is
%% accepted by the config (MongooseIM's option) and refused at start.
-module(mod_event_pusher_push_backend).

-export([check_supported/1, init/2, enable/5, disable/2, disable/4,
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

%% @doc ok for a backend this build can run; an error naming the backend
%% otherwise (raised, so that the module's start fails with it).
-spec check_supported(atom()) -> ok.
check_supported(mnesia) ->
    ok;
check_supported(Backend) ->
    error(#{what => push_backend_not_supported, backend => Backend,
            text => <<"mod_event_pusher_push: this backend is not supported yet; "
                      "use backend = \"mnesia\"">>}).

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

%% Named, not built: a node that loads modules on demand may not have
%% loaded the store yet, so its atom need not exist.
-spec store_module(mnesia | rdbms) -> module().
store_module(mnesia) -> mod_event_pusher_push_mnesia;
store_module(rdbms) -> mod_event_pusher_push_rdbms.

%% @doc The `rabbit' pool type of MongooseIM's `mongoose_wpool', replacing
%% MongooseIM's module of the same name (loaded ahead of it, as our event
%% pusher modules are).
%%
%% MongooseIM starts `[outgoing_pools.rabbit.*]' through this module. Its own
%% version starts `amqp_client' connections; only the event pusher uses rabbit
%% pools, and ours publishes through a Rust pool, so this one starts nothing
%% of AMQP: the pool MongooseIM starts is a worker_pool of one idle worker
%% that holds our Rust pool (one user of it in
%% `mongoose_event_pusher_pool_registry', as a module on a host type is). So
%% the entry makes exactly one pool, ours; MongooseIM's pool API answers for
%% it (get_pools, stop, the queue-length probe, stats), and stopping it
%% through that API releases our pool. The Rust pool connects in the
%% background: a broker that is down does not fail the start.
%%
%% The instrumentation events are MongooseIM's rabbit pool's (names, labels,
%% metric types); `mod_event_pusher_rabbit' emits them from the Rust pool's
%% outcomes.
-module(mongoose_wpool_rabbit).

%% No `-behaviour(mongoose_wpool)': see mod_event_pusher.

-include_lib("kernel/include/logger.hrl").

%% mongoose_wpool callbacks
-export([init/0, start/4, stop/2, instrumentation/2]).

%% The pool's one worker (run by worker_pool's wpool_process)
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% The worker's state: the registry binding it holds.
-type binding() :: {rabbit, global | mongooseim:host_type(), mongoose_wpool:tag()}.

%%--------------------------------------------------------------------
%% mongoose_wpool callbacks
%%--------------------------------------------------------------------

%% @doc Nothing to start: no `amqp_client' (the Rust pool speaks AMQP).
-spec init() -> ok.
init() ->
    ok.

%% @doc Starts the pool under MongooseIM's rabbit pool supervisor: one
%% worker, whatever `workers' says (the Rust pool opens that many
%% connections; see mongoose_event_pusher_nif_config).
-spec start(mongooseim:host_type_or_global(), mongoose_wpool:tag(),
            mongoose_wpool:pool_opts(), mongoose_wpool:conn_opts()) ->
          {ok, pid()} | {error, term()}.
start(HostType, Tag, WpoolOpts, _ConnOpts) ->
    PoolName = mongoose_wpool:make_pool_name(rabbit, HostType, Tag),
    Opts = [Opt || Opt <- WpoolOpts, not lists:member(element(1, Opt), [workers, worker])],
    mongoose_wpool:start_sup_pool(rabbit, PoolName,
                                  Opts ++ [{workers, 1},
                                           {worker, {?MODULE, {rabbit, HostType, Tag}}}]).

%% @doc The worker's terminate/2 releases the Rust pool when MongooseIM
%% stops the pool's supervisor.
-spec stop(mongooseim:host_type_or_global(), mongoose_wpool:tag()) -> ok.
stop(_HostType, _Tag) ->
    ok.

-spec instrumentation(mongooseim:host_type_or_global(), mongoose_wpool:tag()) ->
          [mongoose_instrument:spec()].
instrumentation(global, Tag) ->
    specs(wpool_global_rabbit_connections, wpool_global_rabbit_messages_published,
          #{pool_tag => Tag});
instrumentation(HostType, Tag) ->
    specs(wpool_rabbit_connections, wpool_rabbit_messages_published,
          #{host_type => HostType, pool_tag => Tag}).

%%--------------------------------------------------------------------
%% The worker
%%--------------------------------------------------------------------

%% @doc Acquires the Rust pool of the entry; a pool that cannot start (e.g.
%% a TLS file missing) fails the pool's start, as MongooseIM's would.
-spec init(binding()) -> {ok, binding()} | {stop, term()}.
init({rabbit, HostType, Tag} = Binding) ->
    %% terminate/2 must run when the pool's supervisor stops us.
    process_flag(trap_exit, true),
    case mongoose_event_pusher_pool_registry:acquire(rabbit, HostType, Tag) of
        {ok, _Pool, _Key} -> {ok, Binding};
        {error, Reason} -> {stop, Reason}
    end.

%% MongooseIM's rabbit workers took AMQP requests; nobody sends them to a
%% rabbit pool but the event pusher, which uses the Rust pool directly.
-spec handle_call(term(), term(), binding()) -> {reply, {error, not_supported}, binding()}.
handle_call(Request, _From, Binding) ->
    ?LOG_WARNING(#{what => rabbit_pool_request_not_supported, pool => Binding,
                   request => Request}),
    {reply, {error, not_supported}, Binding}.

-spec handle_cast(term(), binding()) -> {noreply, binding()}.
handle_cast(Request, Binding) ->
    ?LOG_WARNING(#{what => rabbit_pool_request_not_supported, pool => Binding,
                   request => Request}),
    {noreply, Binding}.

-spec handle_info(term(), binding()) -> {noreply, binding()}.
handle_info(_Msg, Binding) ->
    {noreply, Binding}.

-spec terminate(term(), binding()) -> ok.
terminate(_Reason, {rabbit, HostType, Tag}) ->
    mongoose_event_pusher_pool_registry:release(rabbit, HostType, Tag).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec specs(atom(), atom(), mongoose_instrument:labels()) -> [mongoose_instrument:spec()].
specs(ConnectionsEvent, PublishedEvent, Labels) ->
    [{ConnectionsEvent, Labels,
      #{metrics => #{active => counter, opened => spiral, closed => spiral,
                     failed => spiral}}},
     {PublishedEvent, Labels,
      #{metrics => #{count => spiral, failed => spiral, timeout => spiral,
                     time => histogram, size => histogram}}}].

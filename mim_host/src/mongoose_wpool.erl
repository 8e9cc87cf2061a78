%% @doc The test host's `mongoose_wpool': the configured outgoing pools,
%% registered the way MongooseIM registers them, without its workers.
%%
%% A pool type whose callback module `mongoose_wpool_<Type>' exports
%% start/4 (the product's `mongoose_wpool_rabbit') is started and stopped
%% through it, as MongooseIM does: init/0 once per type, start/4, which
%% calls start_sup_pool/3 here (a `wpool' pool, see the emulated `wpool'),
%% and stop/2. Our product runs the other pools (in Rust) from the
%% `outgoing_pools' config, so for those a pool is a record in the
%% `mongoose_wpool' ETS table plus an idle placeholder process under
%% ejabberd_sup standing for the pool supervisor (`start' returns `{ok, Pid}'
%% as MongooseIM does). An `rdbms' pool is
%% different: MongooseIM's own modules query through it, so its process is a
%% real database connection (mongoose_rdbms), asked with `call/4'. Pools with scope
%% `host_type' are expanded per host type; lookups fall back from a host type
%% to `global'. Each pool's instrumentation is set up as in MongooseIM: the
%% type's callback module `mongoose_wpool_<Type>:instrumentation/2' when it
%% exists, plus the queue-length probe event.
%%
%% Starting a pool that runs already replaces it (MongooseIM fails on its
%% instrumentation, `event_already_registered'): a test may boot the host
%% again in the same node after the shutdown of doc/compatibility.md §1, which leaves the
%% pools running. The host's processes are started on demand.
-module(mongoose_wpool).

-export([ensure_started/0,
         start_configured_pools/0, start_configured_pools/1, start_configured_pools/2,
         start/2, start/3, start/4, start/5,
         stop/0, stop/1, stop/2, stop/3,
         get_pool_settings/3, get_pools/0, is_configured/1, make_pool_name/3,
         expand_pools/3, instrumentation/3,
         call/4, cast/4, start_sup_pool/3]).
%% placeholder process entry points
-export([start_placeholder/1, placeholder_init/1]).

-include_lib("kernel/include/logger.hrl").

-record(mongoose_wpool, {name :: pool_name(),
                         atom_name :: proc_name(),
                         strategy :: atom() | fun(),
                         call_timeout :: pos_integer()}).

-type pool_type() :: redis | http | rdbms | cassandra | elastic | generic | rabbit | ldap.
-type scope() :: global | host_type | mongooseim:host_type().
-type tag() :: atom().
-type proc_name() :: atom().
-type pool_name() :: {pool_type(), mongooseim:host_type_or_global(), tag()}.
-type pool_opts() :: [{atom(), term()}].
-type conn_opts() :: map().
-type pool_map_in() :: #{type := pool_type(), scope := scope(), tag := tag(),
                         opts := map(), conn_opts := conn_opts()}.
-type pool_map() :: #{type := pool_type(), host_type := mongooseim:host_type_or_global(),
                      tag := tag(), opts := pool_opts(), conn_opts := conn_opts()}.
-type start_result() :: {ok, pid()} | {error, term()}.
-type mfa_args() :: {module(), atom(), list()}.
%% What a pool's process runs: `{M, F, A}' for a generic pool, a
%% mongoose_rdbms request for an rdbms pool.
-type request() :: {module(), atom(), list()} | tuple().

-export_type([pool_type/0, tag/0, scope/0, proc_name/0, pool_name/0, pool_opts/0,
              conn_opts/0]).

%% MongooseIM's pool type callbacks.
-callback init() -> ok | {error, term()}.
-callback start(mongooseim:host_type_or_global(), tag(), pool_opts(), conn_opts()) ->
    {ok, {pid(), proplists:proplist()}} | {ok, pid()} | {error, term()}.
-callback is_supported_strategy(Strategy :: term()) -> boolean().
-callback instrumentation(mongooseim:host_type_or_global(), tag()) -> [mongoose_instrument:spec()].
-callback stop(mongooseim:host_type_or_global(), tag()) -> ok.
-optional_callbacks([is_supported_strategy/1, instrumentation/2]).

%%--------------------------------------------------------------------
%% Starting
%%--------------------------------------------------------------------

%% @doc Starts the host unless it runs and creates the pool table (owned or
%% inherited by ejabberd_sup).
-spec ensure_started() -> ok.
ensure_started() ->
    {ok, _} = ejabberd_sup:ensure_started(),
    ejabberd_sup:create_ets_table(?MODULE, [named_table, public, {read_concurrency, true},
                                            {keypos, #mongoose_wpool.name}]).

%% @doc Starts every pool of `outgoing_pools' (and of `{outgoing_pools,
%% HostType}' if set) for all host types.
-spec start_configured_pools() -> [start_result()].
start_configured_pools() ->
    start_configured_pools(mongoose_config:get_opt(outgoing_pools)).

-spec start_configured_pools([pool_map_in()]) -> [start_result()].
start_configured_pools(Pools) ->
    start_configured_pools(Pools, all_host_types()).

-spec start_configured_pools([pool_map_in()], [mongooseim:host_type()]) -> [start_result()].
start_configured_pools(Pools, HostTypes) ->
    ok = ensure_started(),
    PerHostType = lists:append([mongoose_config:get_opt({outgoing_pools, HT}, [])
                                || HT <- HostTypes]),
    [start(Pool) || Pool <- expand_pools(Pools, PerHostType, HostTypes)].

-spec start(pool_map()) -> start_result().
start(#{type := Type, host_type := HostType, tag := Tag, opts := Opts, conn_opts := ConnOpts}) ->
    start(Type, HostType, Tag, Opts, ConnOpts).

-spec start(pool_type(), pool_opts()) -> start_result().
start(Type, Opts) ->
    start(Type, global, Opts).

-spec start(pool_type(), mongooseim:host_type_or_global(), pool_opts()) -> start_result().
start(Type, HostType, Opts) ->
    start(Type, HostType, default, Opts).

-spec start(pool_type(), mongooseim:host_type_or_global(), tag(), pool_opts()) ->
          start_result().
start(Type, HostType, Tag, Opts) ->
    start(Type, HostType, Tag, Opts, #{}).

-spec start(pool_type(), mongooseim:host_type_or_global(), tag(), pool_opts(), conn_opts()) ->
          start_result().
start(Type, HostType, Tag, Opts, ConnOpts) ->
    ok = ensure_started(),
    Name = {Type, HostType, Tag},
    AtomName = make_pool_name(Type, HostType, Tag),
    ok = stop_if_running(Type, HostType, Tag),
    mongoose_instrument:set_up(instrumentation(Type, HostType, Tag)),
    case start_pool(Type, HostType, Tag, AtomName, Opts, ConnOpts) of
        {ok, Pid} ->
            ets:insert(?MODULE, #mongoose_wpool{
                                   name = Name, atom_name = AtomName,
                                   strategy = proplists:get_value(strategy, Opts, best_worker),
                                   call_timeout = proplists:get_value(call_timeout, Opts, 5000)}),
            {ok, Pid};
        Error ->
            mongoose_instrument:tear_down(instrumentation(Type, HostType, Tag)),
            Error
    end.

%% Through the type's callback module when it has one (MongooseIM's
%% mongoose_wpool_mgr calls init/0 and start/4), else the placeholder.
-spec start_pool(pool_type(), mongooseim:host_type_or_global(), tag(), proc_name(),
                 pool_opts(), conn_opts()) -> start_result().
start_pool(Type, HostType, Tag, AtomName, Opts, ConnOpts) ->
    Callback = callback_module(Type),
    case erlang:function_exported(Callback, start, 4) of
        true ->
            ok = Callback:init(),
            WpoolOpts = [Opt || Opt = {Key, _} <- Opts,
                                not lists:member(Key, [strategy, call_timeout])],
            case Callback:start(HostType, Tag, WpoolOpts, ConnOpts) of
                {ok, {Pid, _}} -> {ok, Pid};
                Other -> Other
            end;
        false ->
            Spec = #{id => {?MODULE, AtomName},
                     start => pool_process(Type, AtomName, Opts, ConnOpts),
                     restart => temporary, shutdown => 5000, type => worker,
                     modules => [?MODULE]},
            supervisor:start_child(ejabberd_sup, Spec)
    end.

%% @doc As MongooseIM's: starts a worker_pool pool (the emulated `wpool')
%% named ProcName under the pool type's supervisor.
-spec start_sup_pool(pool_type(), proc_name(), [{atom(), term()}]) -> start_result().
start_sup_pool(Type, ProcName, WpoolOpts) ->
    ok = mongoose_wpool_type_sup:ensure_started(Type),
    ChildSpec = #{id => ProcName,
                  start => {wpool, start_pool, [ProcName, WpoolOpts]},
                  restart => temporary, shutdown => infinity, type => supervisor,
                  modules => [wpool]},
    supervisor:start_child(mongoose_wpool_type_sup:name(Type), ChildSpec).

%%--------------------------------------------------------------------
%% Stopping
%%--------------------------------------------------------------------

-spec stop() -> [ok].
stop() ->
    [stop(Type, HostType, Tag) || {Type, HostType, Tag} <- get_pools()].

-spec stop(pool_type()) -> ok.
stop(Type) ->
    stop(Type, global).

-spec stop(pool_type(), mongooseim:host_type_or_global()) -> ok.
stop(Type, HostType) ->
    stop(Type, HostType, default).

-spec stop(pool_type(), mongooseim:host_type_or_global(), tag()) -> ok.
stop(Type, HostType, Tag) ->
    Name = {Type, HostType, Tag},
    try
        ets:delete(?MODULE, Name),
        AtomName = make_pool_name(Type, HostType, Tag),
        Callback = callback_module(Type),
        case erlang:function_exported(Callback, stop, 2) of
            true ->
                %% As MongooseIM's mongoose_wpool_mgr: the pool is a child of
                %% the type's supervisor.
                ok = Callback:stop(HostType, Tag),
                TypeSup = mongoose_wpool_type_sup:name(Type),
                _ = supervisor:terminate_child(TypeSup, AtomName),
                _ = supervisor:delete_child(TypeSup, AtomName);
            false ->
                ejabberd_sup:stop_child({?MODULE, AtomName})
        end,
        mongoose_instrument:tear_down(instrumentation(Type, HostType, Tag))
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => pool_stop_failed, pool_type => Type, server => HostType,
                         pool_tag => Tag, pool_key => Name, class => Class, reason => Reason,
                         stacktrace => Stacktrace})
    end.

%%--------------------------------------------------------------------
%% Lookups
%%--------------------------------------------------------------------

%% @doc The pool's record for the host type, else the global one, else
%% `undefined'.
-spec get_pool_settings(pool_type(), mongooseim:host_type_or_global(), tag()) ->
          #mongoose_wpool{} | undefined.
get_pool_settings(Type, HostType, Tag) ->
    case lookup({Type, HostType, Tag}) of
        [] when is_binary(HostType) -> get_pool_settings(Type, global, Tag);
        [] -> undefined;
        [Pool] -> Pool
    end.

-spec get_pools() -> [pool_name()].
get_pools() ->
    case ets:whereis(?MODULE) of
        undefined -> [];
        _ -> [Name || #mongoose_wpool{name = Name} <- ets:tab2list(?MODULE)]
    end.

-spec is_configured(pool_type()) -> boolean().
is_configured(Type) ->
    lists:any(fun(#{type := T}) -> T =:= Type end, mongoose_config:get_opt(outgoing_pools)).

%% @doc MongooseIM's registered name of a pool: `mongoose_wpool$Type$Host$Tag'.
-spec make_pool_name(pool_type(), scope(), tag()) -> proc_name().
make_pool_name(Type, HostType, Tag) when is_atom(Type), is_atom(Tag) ->
    Parts = [<<"mongoose_wpool">>, name_part(Type), name_part(HostType), name_part(Tag)],
    binary_to_atom(iolist_to_binary(lists:join($$, Parts)), utf8).

-spec name_part(atom() | binary()) -> binary().
name_part(Part) when is_atom(Part) -> atom_to_binary(Part, utf8);
name_part(Part) when is_binary(Part) -> Part.

%% @doc Pools with scope `host_type' become one per host type (unless a
%% host-type specific pool of the same type and tag exists); `scope' becomes
%% `host_type' and the options a key-value list.
-spec expand_pools([pool_map_in()], [pool_map_in()], [mongooseim:host_type()]) -> [pool_map()].
expand_pools(Pools, PerHostType, HostTypes) ->
    Overridden = sets:from_list([pool_id(Pool) || Pool <- PerHostType]),
    Copies = fun(#{scope := host_type} = Pool) ->
                     [Copy || HostType <- HostTypes,
                              Copy <- [Pool#{scope := HostType}],
                              not sets:is_element(pool_id(Copy), Overridden)];
                (GlobalPool) ->
                     [GlobalPool]
             end,
    lists:map(fun prepare_pool_map/1, PerHostType ++ lists:append(lists:map(Copies, Pools))).

-spec pool_id(pool_map_in()) -> {pool_type(), scope(), tag()}.
pool_id(#{type := Type, scope := Scope, tag := Tag}) ->
    {Type, Scope, Tag}.

%% @doc The instrumentation events of a pool.
-spec instrumentation(pool_type(), mongooseim:host_type_or_global(), tag()) ->
          [mongoose_instrument:spec()].
instrumentation(Type, HostType, Tag) ->
    Callback = callback_module(Type),
    FromCallback = case erlang:function_exported(Callback, instrumentation, 2) of
                       true -> Callback:instrumentation(HostType, Tag);
                       false -> []
                   end,
    FromCallback ++ default_instrumentation(Type, HostType, Tag).

%%--------------------------------------------------------------------
%% Placeholder process
%%--------------------------------------------------------------------

%% The process standing for a pool: a database connection for rdbms, else
%% the placeholder.
-spec pool_process(pool_type(), proc_name(), pool_opts(), conn_opts()) -> mfa_args().
pool_process(rdbms, AtomName, Opts, ConnOpts) ->
    {mongoose_rdbms, start_link, [AtomName, Opts, ConnOpts]};
pool_process(_Type, AtomName, _Opts, _ConnOpts) ->
    {?MODULE, start_placeholder, [AtomName]}.

%% @doc An idle process registered under the pool's name, standing for the
%% pool supervisor; it exits when ejabberd_sup stops it.
-spec start_placeholder(proc_name()) -> {ok, pid()}.
start_placeholder(AtomName) ->
    proc_lib:start_link(?MODULE, placeholder_init, [AtomName]).

-spec placeholder_init(proc_name()) -> no_return().
placeholder_init(AtomName) ->
    register(AtomName, self()),
    proc_lib:init_ack({ok, self()}),
    placeholder_loop().

%% A `generic' pool's work ({M, F, A} requests, as MongooseIM's generic
%% workers take them) runs in a process of its own, so one slow request never
%% holds the others up; other pool types ignore what they get.
-spec placeholder_loop() -> no_return().
placeholder_loop() ->
    receive
        {'$wpool_cast', {M, F, A}} ->
            _ = proc_lib:spawn(M, F, A),
            placeholder_loop();
        {'$wpool_call', From, Ref, {M, F, A}} ->
            _ = proc_lib:spawn(fun() -> From ! {Ref, erlang:apply(M, F, A)} end),
            placeholder_loop();
        _ ->
            placeholder_loop()
    end.

%%--------------------------------------------------------------------
%% Requests to generic pools
%%--------------------------------------------------------------------

%% @doc Runs `{M, F, A}' in the pool without waiting (MongooseIM's
%% `mongoose_wpool:cast/4'); the host type's pool first, then the global one.
-spec cast(pool_type(), mongooseim:host_type_or_global(), tag(), {module(), atom(), list()}) ->
          ok | {error, pool_not_started}.
cast(Type, HostType, Tag, Request) ->
    case worker(Type, HostType, Tag) of
        {ok, Pid, _Timeout} -> Pid ! {'$wpool_cast', Request}, ok;
        Error -> Error
    end.

%% @doc Runs `{M, F, A}' in a generic pool (a request in an rdbms pool) and
%% returns its result, within the pool's `call_timeout'.
-spec call(pool_type(), mongooseim:host_type_or_global(), tag(), request()) ->
          term() | {error, pool_not_started | timeout}.
call(Type, HostType, Tag, Request) ->
    case worker(Type, HostType, Tag) of
        {ok, Pid, Timeout} ->
            %% The monitor's reference is the alias the answer comes to, so
            %% a late answer is dropped and a dead worker ends the wait.
            Ref = erlang:monitor(process, Pid, [{alias, demonitor}]),
            Pid ! {'$wpool_call', Ref, Ref, Request},
            receive
                {Ref, Result} ->
                    erlang:demonitor(Ref, [flush]),
                    Result;
                {'DOWN', Ref, process, Pid, Why} ->
                    {error, {worker_down, Why}}
            after Timeout ->
                    erlang:demonitor(Ref, [flush]),
                    {error, timeout}
            end;
        Error ->
            Error
    end.

-spec worker(pool_type(), mongooseim:host_type_or_global(), tag()) ->
          {ok, pid(), pos_integer()} | {error, pool_not_started}.
worker(Type, HostType, Tag) ->
    case ets:whereis(?MODULE) =/= undefined andalso ets:lookup(?MODULE, {Type, HostType, Tag}) of
        [#mongoose_wpool{atom_name = AtomName, call_timeout = Timeout}] ->
            case whereis(AtomName) of
                undefined -> {error, pool_not_started};
                Pid -> {ok, Pid, Timeout}
            end;
        _ when HostType =/= global ->
            worker(Type, global, Tag);
        _ ->
            {error, pool_not_started}
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% A pool of that name from an earlier boot (or start) is replaced.
-spec stop_if_running(pool_type(), mongooseim:host_type_or_global(), tag()) -> ok.
stop_if_running(Type, HostType, Tag) ->
    Running = lookup({Type, HostType, Tag}) =/= []
        orelse whereis(make_pool_name(Type, HostType, Tag)) =/= undefined,
    case Running of
        true ->
            ?LOG_INFO(#{what => pool_replaced, pool_type => Type, server => HostType,
                        pool_tag => Tag}),
            stop(Type, HostType, Tag);
        false ->
            ok
    end.

-spec prepare_pool_map(pool_map_in()) -> pool_map().
prepare_pool_map(#{scope := HostType, opts := Opts} = Pool) ->
    (maps:remove(scope, Pool))#{host_type => HostType, opts => maps:to_list(Opts)}.

-spec default_instrumentation(pool_type(), mongooseim:host_type_or_global(), tag()) ->
          [mongoose_instrument:spec()].
default_instrumentation(Type, HostTypeOrGlobal, Tag) ->
    Labels = #{pool_type => Type, pool_tag => Tag},
    %% a probe: this module reports the total queue length when asked
    Probe = #{probe => #{module => ?MODULE}, metrics => #{total => gauge}},
    case HostTypeOrGlobal of
        global -> [{wpool_global_queue_lengths, Labels, Probe}];
        HostType -> [{wpool_queue_lengths, Labels#{host_type => HostType}, Probe}]
    end.

%% The type's callback module (loaded, when it exists).
-spec callback_module(pool_type()) -> module().
callback_module(Type) ->
    Callback = list_to_atom("mongoose_wpool_" ++ atom_to_list(Type)),
    _ = code:ensure_loaded(Callback),
    Callback.

-spec lookup(pool_name()) -> [#mongoose_wpool{}].
lookup(Name) ->
    case ets:whereis(?MODULE) of
        undefined -> [];
        _ -> ets:lookup(?MODULE, Name)
    end.

-spec all_host_types() -> [mongooseim:host_type()].
all_host_types() ->
    mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types).

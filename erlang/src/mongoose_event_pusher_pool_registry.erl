%% @doc Shared Rust pools, counted by their users: one per `outgoing_pools'
%% entry (a global pool is shared by all host types and modules that name its
%% tag), and one per host type for SNS, whose connection options are
%% `mod_event_pusher_sns''s own.
%%
%% Backends reach it through `mongoose_event_pusher_pool_hold'; MongooseIM's
%% `mongoose_wpool' through our `mongoose_wpool_rabbit', whose pool holds the
%% Rust pool of its entry (host type `global' for a global entry). The first
%% acquire of a pool starts its owner (`mongoose_event_pusher_pool_owner',
%% under `mongoose_event_pusher_sup'); the last release stops it, which
%% drains and closes the pool.
%%
%% Bindings `{Type, HostType, Tag} => {PoolKey, Users}' live in one
%% persistent_term, written only here; they survive a restart of this
%% process. Each binding's pool resource has a persistent_term of its own,
%% the one read of lookup/3 on the hot path: written when the binding is
%% made and again whenever the pool's owner (re)starts (owner_started/1).
-module(mongoose_event_pusher_pool_registry).

-behaviour(gen_server).

-include("mongoose.hrl").

%% API
-export([acquire/3, release/3, lookup/3, pool_key/3, owner_started/1, start_link/0]).

%% gen_server callbacks
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-type pool_type() :: atom().
%% `global' only for mongoose_wpool_rabbit's hold on a global entry.
-type host_type() :: binary() | global.
-type tag() :: atom().
-type binding() :: {pool_type(), host_type(), tag()}.
-type bindings() :: #{binding() => {mongoose_event_pusher_pool_owner:key(), pos_integer()}}.
-export_type([pool_type/0, tag/0]).

%% Where a pool's options come from: an `outgoing_pools' entry, or (SNS) the
%% options of the module on the host type.
-type source() :: mongoose_event_pusher_nif_config:source().

-define(BINDINGS, {?MODULE, bindings}).
%% The pool resource of one binding.
-define(POOL(Type, HostType, Tag), {?MODULE, Type, HostType, Tag}).
%% The host supervisor (ejabberd_sup) the bindings were made under.
-define(HOST_SUP, {?MODULE, host_sup}).
%% acquire starts a pool (TLS files are read); release waits for its drain.
-define(ACQUIRE_TIMEOUT, 30000).
-define(RELEASE_TIMEOUT, 60000).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Finds the pool of type Type and tag Tag for HostType (for an
%% `outgoing_pools' entry: the host type's first, then a global one), starts
%% it if no one uses it yet, and counts one more user. Returns the pool and
%% its key.
-spec acquire(pool_type(), host_type(), tag()) ->
          {ok, mongoose_event_pusher_pool_owner:pool_ref(), mongoose_event_pusher_pool_owner:key()}
          | {error, term()}.
acquire(Type, HostType, Tag) ->
    ok = mongoose_event_pusher_sup:ensure_started(),
    gen_server:call(?MODULE, {acquire, {Type, HostType, Tag}}, ?ACQUIRE_TIMEOUT).

%% @doc Counts one user less; the last release stops the pool (it drains
%% first, bounded by a timeout). Releasing what is not acquired is a no-op.
-spec release(pool_type(), host_type(), tag()) -> ok.
release(Type, HostType, Tag) ->
    case whereis(?MODULE) of
        undefined -> ok;
        _ -> gen_server:call(?MODULE, {release, {Type, HostType, Tag}}, ?RELEASE_TIMEOUT)
    end.

%% @doc The pool an acquired binding uses; for the hot path (one
%% persistent_term read, no message passing).
-spec lookup(pool_type(), host_type(), tag()) ->
          mongoose_event_pusher_pool_owner:pool_ref() | undefined.
lookup(Type, HostType, Tag) ->
    persistent_term:get(?POOL(Type, HostType, Tag), undefined).

%% @doc Which configured pool serves Type/Tag for HostType, without starting it.
-spec pool_key(pool_type(), host_type(), tag()) ->
          {ok, mongoose_event_pusher_pool_owner:key()} | {error, term()}.
pool_key(Type, HostType, Tag) ->
    case find_pool(Type, HostType, Tag) of
        {ok, Key, _Source} -> {ok, Key};
        {error, _} = Error -> Error
    end.

%% @doc Called by a pool's owner once its pool runs (again): the bindings
%% that use it get its new resource.
-spec owner_started(mongoose_event_pusher_pool_owner:key()) -> ok.
owner_started(PoolKey) ->
    gen_server:cast(?MODULE, {owner_started, PoolKey}).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init([]) -> {ok, #{}}.
init([]) ->
    case persistent_term:get(?HOST_SUP, undefined) =:= whereis(ejabberd_sup) of
        true ->
            %% A restart within the same host: the bindings are still in use,
            %% their owners may not be (if our supervisor restarted them all).
            %% Checked once the supervisor has finished starting us: calling
            %% it from init would deadlock.
            self() ! restore_owners;
        false ->
            %% Left over from a previous host (e.g. a test that did not stop
            %% its modules); nothing of it runs any more.
            drop_stale_bindings()
    end,
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({acquire, Binding}, _From, State) ->
    {reply, do_acquire(Binding), State};
handle_call({release, Binding}, _From, State) ->
    {reply, do_release(Binding), State};
handle_call(Request, _From, State) ->
    ?LOG_WARNING(#{what => event_pusher_pools_unexpected_call, request => Request}),
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({owner_started, PoolKey}, State) ->
    publish_pools(PoolKey),
    {noreply, State};
handle_cast(Msg, State) ->
    ?LOG_WARNING(#{what => event_pusher_pools_unexpected_cast, msg => Msg}),
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(restore_owners, State) ->
    restore_owners(),
    {noreply, State};
handle_info(Msg, State) ->
    ?LOG_WARNING(#{what => event_pusher_pools_unexpected_info, msg => Msg}),
    {noreply, State}.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec do_acquire(binding()) ->
          {ok, mongoose_event_pusher_pool_owner:pool_ref(), mongoose_event_pusher_pool_owner:key()}
          | {error, term()}.
do_acquire(Binding = {Type, HostType, Tag}) ->
    Bindings = bindings(),
    Result = case Bindings of
                 #{Binding := {PoolKey, Users}} ->
                     {ensure_running(PoolKey, HostType), PoolKey, Users + 1};
                 #{} ->
                     case find_pool(Type, HostType, Tag) of
                         {ok, PoolKey, Source} -> {ensure_owner(PoolKey, Source), PoolKey, 1};
                         {error, _} = Error -> {Error, none, 0}
                     end
             end,
    case Result of
        {ok, Key, NewUsers} ->
            set_bindings(Bindings#{Binding => {Key, NewUsers}}),
            publish_pools(Key),
            {ok, lookup(Type, HostType, Tag), Key};
        {{error, _} = Failed, _, _} ->
            Failed
    end.

-spec do_release(binding()) -> ok.
do_release(Binding) ->
    Bindings = bindings(),
    case Bindings of
        #{Binding := {PoolKey, Users}} when Users > 1 ->
            set_bindings(Bindings#{Binding := {PoolKey, Users - 1}});
        #{Binding := {PoolKey, 1}} ->
            Rest = maps:remove(Binding, Bindings),
            set_bindings(Rest),
            StillUsed = lists:any(fun({_, {K, _}}) -> K =:= PoolKey end, maps:to_list(Rest)),
            case StillUsed of
                true -> ok;
                false -> stop_owner(PoolKey)
            end,
            %% Erased only now: while the pool drains a submit gets
            %% `{error, closed}', which says more than "no pool".
            {Type, HostType, Tag} = Binding,
            _ = persistent_term:erase(?POOL(Type, HostType, Tag)),
            ok;
        #{} ->
            ok
    end.

-spec ensure_owner(mongoose_event_pusher_pool_owner:key(), source()) -> ok | {error, term()}.
ensure_owner(PoolKey, Source) ->
    case mongoose_event_pusher_nif_config:start_spec(PoolKey, Source) of
        {ok, StartSpec} ->
            ChildSpec = mongoose_event_pusher_pool_owner:child_spec(PoolKey, StartSpec),
            Result = case supervisor:start_child(mongoose_event_pusher_sup, ChildSpec) of
                         {ok, _Pid} -> ok;
                         {error, {already_started, _Pid}} -> ok;
                         {error, already_present} -> replace_owner(ChildSpec);
                         {error, Reason} -> {error, Reason}
                     end,
            case Result of
                ok -> ok;
                {error, Why} -> start_error(PoolKey, Why)
            end;
        {error, _} = Error ->
            Error
    end.

%% A stopped child left behind (e.g. after its restarts failed) is replaced by
%% one with the current config.
-spec replace_owner(supervisor:child_spec()) -> ok | {error, term()}.
replace_owner(ChildSpec = #{id := Id}) ->
    _ = supervisor:delete_child(mongoose_event_pusher_sup, Id),
    case supervisor:start_child(mongoose_event_pusher_sup, ChildSpec) of
        {ok, _Pid} -> ok;
        {error, {already_started, _Pid}} -> ok;
        {error, Reason} -> {error, Reason}
    end.

-spec start_error(mongoose_event_pusher_pool_owner:key(), term()) -> {error, map()}.
start_error({Type, Scope, Tag}, Reason) ->
    {error, #{what => event_pusher_pool_start_failed, pool_type => Type, pool_scope => Scope,
              pool_tag => Tag, reason => unwrap_start_error(Reason)}}.

%% supervisor:start_child/2 wraps init's stop reason; keep what the NIF said.
-spec unwrap_start_error(term()) -> term().
unwrap_start_error({{pool_start_failed, Reason}, _ChildSpec}) -> Reason;
unwrap_start_error({pool_start_failed, Reason}) -> Reason;
unwrap_start_error(Reason) -> Reason.

-spec stop_owner(mongoose_event_pusher_pool_owner:key()) -> ok.
stop_owner(PoolKey) ->
    %% terminate_child waits for the owner's terminate/2, i.e. for the drain.
    _ = supervisor:terminate_child(mongoose_event_pusher_sup, {pool, PoolKey}),
    _ = supervisor:delete_child(mongoose_event_pusher_sup, {pool, PoolKey}),
    ok.

-spec restore_owners() -> ok.
restore_owners() ->
    %% One binding per pool is enough: it names a host type to look it up for.
    ByPool = maps:from_list([{K, HT} || {{_, HT, _}, {K, _}} <- maps:to_list(bindings())]),
    maps:foreach(fun(PoolKey, HostType) ->
                         case mongoose_event_pusher_pool_owner:get_ref(PoolKey) of
                             undefined ->
                                 Result = ensure_running(PoolKey, HostType),
                                 ?LOG_WARNING(#{what => event_pusher_pool_restored,
                                                pool => PoolKey, result => Result});
                             _Pool ->
                                 ok
                         end
                 end, ByPool),
    %% Owners that restarted while this process did not run could not say so.
    maps:foreach(fun(PoolKey, _HostType) -> publish_pools(PoolKey) end, ByPool).

%% Points every binding of PoolKey at the pool its owner runs now.
-spec publish_pools(mongoose_event_pusher_pool_owner:key()) -> ok.
publish_pools(PoolKey) ->
    case mongoose_event_pusher_pool_owner:get_ref(PoolKey) of
        undefined ->
            ok;
        Pool ->
            maps:foreach(fun({Type, HostType, Tag}, {K, _Users}) when K =:= PoolKey ->
                                 persistent_term:put(?POOL(Type, HostType, Tag), Pool);
                            (_Binding, _) ->
                                 ok
                         end, bindings())
    end.

%% Starts the owner of a bound pool again if it is not running (it failed to
%% restart, or our supervisor was restarted).
-spec ensure_running(mongoose_event_pusher_pool_owner:key(), host_type()) -> ok | {error, term()}.
ensure_running({Type, _Scope, Tag} = PoolKey, HostType) ->
    case mongoose_event_pusher_pool_owner:get_ref(PoolKey) of
        undefined ->
            case find_pool(Type, HostType, Tag) of
                {ok, PoolKey, Source} -> ensure_owner(PoolKey, Source);
                {ok, OtherKey, _} -> {error, #{what => event_pusher_pool_config_changed,
                                                pool => PoolKey, now => OtherKey}};
                {error, _} = Error -> Error
            end;
        _Pool ->
            ok
    end.

-spec bindings() -> bindings().
bindings() ->
    persistent_term:get(?BINDINGS, #{}).

-spec set_bindings(bindings()) -> ok.
set_bindings(Empty) when map_size(Empty) =:= 0 ->
    _ = persistent_term:erase(?BINDINGS),
    persistent_term:erase(?HOST_SUP),
    ok;
set_bindings(Bindings) ->
    HostSup = whereis(ejabberd_sup),
    case persistent_term:get(?HOST_SUP, undefined) of
        HostSup -> ok;
        _ -> persistent_term:put(?HOST_SUP, HostSup)
    end,
    persistent_term:put(?BINDINGS, Bindings).

-spec drop_stale_bindings() -> ok.
drop_stale_bindings() ->
    case bindings() of
        Empty when map_size(Empty) =:= 0 ->
            ok;
        Stale ->
            ?LOG_WARNING(#{what => event_pusher_pools_stale_bindings_dropped,
                           bindings => maps:keys(Stale)}),
            [persistent_term:erase(?POOL(Type, HostType, Tag))
             || {Type, HostType, Tag} <- maps:keys(Stale)],
            set_bindings(#{})
    end.

%% Which pool serves Type/Tag for HostType, and where its options come from.
%% SNS has no `outgoing_pools' type in MongooseIM: its pool is built from the
%% module's options, one per host type.
-spec find_pool(pool_type(), host_type(), tag()) ->
          {ok, mongoose_event_pusher_pool_owner:key(), source()} | {error, map()}.
find_pool(sns, HostType, Tag) ->
    {ok, {sns, HostType, Tag}, {module_opts, mod_event_pusher_sns}};
find_pool(Type, HostType, Tag) ->
    find_entry(Type, HostType, Tag).

%% The entry for HostType in this order, as MongooseIM's mongoose_wpool picks
%% it: a pool in the host type's `host_config' section, a global-config pool
%% with that host type as scope or with scope `host_type' (one pool per host
%% type), and last a pool of scope `global' (one pool for all).
-spec find_entry(pool_type(), host_type(), tag()) ->
          {ok, mongoose_event_pusher_pool_owner:key(),
           mongoose_event_pusher_nif_config:pool_entry()} | {error, map()}.
find_entry(Type, HostType, Tag) ->
    HostPools = mongoose_config:get_opt({outgoing_pools, HostType}, []),
    GlobalPools = mongoose_config:get_opt(outgoing_pools, []),
    Matching = [E || E = #{type := T, tag := G} <- HostPools ++ GlobalPools,
                     T =:= Type, G =:= Tag],
    ForHostType = [E || is_binary(HostType),
                        E = #{scope := S} <- Matching, S =:= HostType orelse S =:= host_type],
    Global = [E || E = #{scope := global} <- Matching],
    case {ForHostType, Global} of
        {[Entry | _], _} -> {ok, {Type, HostType, Tag}, Entry};
        {[], [Entry | _]} -> {ok, {Type, global, Tag}, Entry};
        {[], []} -> {error, #{what => event_pusher_pool_not_found, pool_type => Type,
                              pool_tag => Tag, host_type => HostType,
                              text => pool_not_found_text(Type, Tag)}}
    end.

-spec pool_not_found_text(pool_type(), tag()) -> binary().
pool_not_found_text(Type, Tag) ->
    iolist_to_binary(io_lib:format("No outgoing pool [outgoing_pools.~s.~s] is configured "
                                   "for this host type or globally", [Type, Tag])).

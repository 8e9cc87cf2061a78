%% @doc Supervisor of the event pusher's processes: the drop log
%% (`mongoose_event_pusher_drop_log'), the pool registry
%% (`mongoose_event_pusher_pool_registry') and one owner per running Rust pool, added
%% and removed by the registry.
%%
%% It runs under MongooseIM's `ejabberd_sup', started on first use, so the
%% application needs no start of its own inside a MongooseIM release.
-module(mongoose_event_pusher_sup).

-behaviour(supervisor).

-export([ensure_started/0, start_link/0]).
-export([init/1]).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Starts the supervisor under `ejabberd_sup' unless it runs already.
-spec ensure_started() -> ok.
ensure_started() ->
    case whereis(?MODULE) of
        undefined -> start_under_host();
        _Pid -> ok
    end.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%%--------------------------------------------------------------------
%% supervisor callback
%%--------------------------------------------------------------------

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    %% one_for_one: a crashing pool owner is restarted alone (with a new Rust
    %% pool); the registry keeps its bindings in a persistent_term, so its own
    %% restart does not disturb the pools.
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    Registry = #{id => mongoose_event_pusher_pool_registry,
                 start => {mongoose_event_pusher_pool_registry, start_link, []},
                 restart => permanent,
                 shutdown => 5000,
                 type => worker,
                 modules => [mongoose_event_pusher_pool_registry]},
    %% The drop log first: pools report drops to it.
    DropLog = #{id => mongoose_event_pusher_drop_log,
                start => {mongoose_event_pusher_drop_log, start_link, []},
                restart => permanent,
                shutdown => 5000,
                type => worker,
                modules => [mongoose_event_pusher_drop_log]},
    {ok, {Flags, [DropLog, Registry]}}.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec start_under_host() -> ok.
start_under_host() ->
    ChildSpec = #{id => ?MODULE,
                  start => {?MODULE, start_link, []},
                  restart => permanent,
                  shutdown => infinity,
                  type => supervisor,
                  modules => [?MODULE]},
    try ejabberd_sup:start_child(ChildSpec) of
        {ok, _Pid} -> ok
    catch
        %% Two modules starting at once: the other one won.
        error:{start_child_failed, {error, {already_started, _}}, _} -> ok;
        error:{start_child_failed, {error, already_present}, _} -> restart_under_host()
    end.

%% Our child spec is left in ejabberd_sup after a stop through
%% supervisor:terminate_child/2; restart it rather than add a second one.
-spec restart_under_host() -> ok.
restart_under_host() ->
    case supervisor:restart_child(ejabberd_sup, ?MODULE) of
        {ok, _Pid} -> ok;
        {error, running} -> ok
    end.

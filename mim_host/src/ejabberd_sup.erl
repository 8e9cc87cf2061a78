%% @doc The test host's `ejabberd_sup': MongooseIM's top supervisor with the
%% children the test host needs (`gen_hook', `mongoose_instrument'); other
%% services and our application's supervisors are added with `start_child/1'.
%%
%% The host starts itself: the functions of the boot sequence (doc/compatibility.md §1:
%% `mongoose_config:set_opts/1', `mongoose_wpool:start_configured_pools/0',
%% `mongoose_modules:start/0', `gen_hook:reload_hooks/0'...) call
%% `ensure_started/0', which starts the supervisor unless it runs, unlinked
%% from the caller and with the `user' group leader, so that it outlives
%% common_test's per-suite and per-case processes. `stop/0' takes it down.
%%
%% MongooseIM's unit tests start `gen_hook' and `mongoose_instrument' on
%% their own (`start_link/0', linked to a helper process). Both styles mix:
%% a child whose name is taken when the supervisor starts it is `ignore'd
%% (the test's process serves), a test's `start_link/0' first stops the
%% supervisor's own child (`release_child/1'), and `ensure_started/0'
%% restarts a child that no longer runs (the test's process is gone).
-module(ejabberd_sup).

-behaviour(supervisor).

-export([start_link/0, init/1]).
-export([start_child/1, start_child/2, stop_child/1, create_ets_table/2,
         start_linked_child/2]).
%% test host extensions
-export([ensure_started/0, stop/0, release_child/1]).

-include_lib("kernel/include/logger.hrl").

%% The children every host runs; ensure_started/0 keeps them running.
-define(CORE_CHILDREN, [gen_hook, mongoose_instrument]).
-define(START_TIMEOUT, 60000).

-spec start_link() -> supervisor:startlink_ret().
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, noargs).

-spec init(noargs) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(noargs) ->
    %% created here so that the supervisor owns them (no heir transfer later,
    %% which a supervisor would log as an unexpected message)
    mongoose_wpool:ensure_started(),
    ejabberd_local:ensure_tables(),
    ejabberd_sm:ensure_tables(),
    gen_iq_handler:ensure_table(),
    mongoose_domain_api:ensure_table(),
    mongoose_router:ensure_table(),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 1},
          [worker_spec(Module) || Module <- ?CORE_CHILDREN]}}.

%% @doc Starts the supervisor unless it runs (not linked to the caller) and
%% restarts a core child that is not running. Cheap when all runs: a few
%% `whereis/1' calls.
-spec ensure_started() -> {ok, pid()}.
ensure_started() ->
    case whereis(?MODULE) of
        undefined ->
            start_detached();
        Self when Self =:= self() ->
            %% called from our own init (mongoose_wpool:ensure_started/0)
            {ok, Self};
        Pid ->
            ensure_core_children(Pid),
            {ok, Pid}
    end.

%% @doc Stops the supervisor and its children, waiting until it is gone.
%% Works from any process (an exit signal would only stop it from its parent,
%% the process that started it).
-spec stop() -> ok.
stop() ->
    case whereis(?MODULE) of
        undefined ->
            ok;
        Pid ->
            MRef = monitor(process, Pid),
            %% sys:terminate/3 replies before the supervisor has stopped
            %% its children, so the monitor tells when it is gone
            try
                sys:terminate(Pid, shutdown, 60000)
            catch
                exit:_AlreadyGone -> ok
            end,
            receive
                {'DOWN', MRef, process, Pid, _Reason} -> ok
            end
    end.

%% @doc Lets a test start its own `Module' (a core child, e.g. `gen_hook'):
%% stops the supervisor's instance if it is the one holding the name. The
%% child spec stays, so `ensure_started/0' restarts it once the test's
%% process is gone. A no-op inside the supervisor (its own restarts).
-spec release_child(module()) -> ok.
release_child(Module) ->
    case whereis(?MODULE) of
        undefined ->
            ok;
        Self when Self =:= self() ->
            ok;
        Sup ->
            Registered = whereis(Module),
            Children = try supervisor:which_children(Sup) catch exit:_ -> [] end,
            case lists:keyfind(Module, 1, Children) of
                {Module, Registered, _, _} when is_pid(Registered) ->
                    _ = supervisor:terminate_child(Sup, Module),
                    ok;
                _ ->
                    ok
            end
    end.

-spec start_child(supervisor:child_spec()) -> {ok, pid()}.
start_child(ChildSpec) ->
    start_child(?MODULE, ChildSpec).

%% @doc Starts a child, raising `{start_child_failed, Result, ChildSpec}' on
%% any result but `{ok, Pid}', as MongooseIM does. Starts the host first
%% when the child goes under it.
-spec start_child(atom() | pid(), supervisor:child_spec()) -> {ok, pid()}.
start_child(SupName, ChildSpec) ->
    _ = case SupName of
            ?MODULE -> ensure_started();
            _ -> ok
        end,
    case supervisor:start_child(SupName, ChildSpec) of
        {ok, Pid} ->
            {ok, Pid};
        Other ->
            ?LOG_ERROR(#{what => start_child_failed, spec => ChildSpec,
                         supervisor_name => SupName, reason => Other}),
            erlang:error({start_child_failed, Other, ChildSpec})
    end.

-spec stop_child(term()) -> ok.
stop_child(Id) ->
    supervisor:terminate_child(?MODULE, Id),
    supervisor:delete_child(?MODULE, Id),
    ok.

%% @doc Creates a named ETS table unless it exists. When called by another
%% process than the supervisor, the supervisor inherits the table, so it
%% survives its creator (a module's start/2, a test case).
-spec create_ets_table(atom(), list()) -> ok.
create_ets_table(Name, Opts) ->
    case ets:whereis(Name) of
        undefined ->
            ets:new(Name, with_heir(whereis(?MODULE), Opts)),
            ok;
        _ ->
            ok
    end.

%% @doc The start function of a core child: `ignore' when its name is taken
%% (a test started it itself), else `Module:start_link(Args...)'.
-spec start_linked_child(module(), list()) -> {ok, pid()} | ignore | {error, term()}.
start_linked_child(Module, Args) ->
    case whereis(Module) of
        undefined -> erlang:apply(Module, start_link, Args);
        _TestOwned -> ignore
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% The supervisor is started by a short-lived process that unlinks from it,
%% so no caller's exit takes it down; the `user' group leader keeps its
%% output away from a test case's group leader, which ends with the case.
-spec start_detached() -> {ok, pid()}.
start_detached() ->
    Caller = self(),
    Ref = make_ref(),
    GroupLeader = case whereis(user) of
                      undefined -> group_leader();
                      User -> User
                  end,
    {Starter, MRef} =
        spawn_monitor(fun() ->
                              group_leader(GroupLeader, self()),
                              Result = start_link(),
                              case Result of
                                  {ok, Pid} -> unlink(Pid);
                                  _ -> ok
                              end,
                              Caller ! {Ref, Result}
                      end),
    receive
        {Ref, {ok, Pid}} ->
            erlang:demonitor(MRef, [flush]),
            {ok, Pid};
        {Ref, {error, {already_started, Pid}}} ->
            %% another process started it meanwhile
            erlang:demonitor(MRef, [flush]),
            {ok, Pid};
        {Ref, Error} ->
            erlang:demonitor(MRef, [flush]),
            erlang:error(#{what => host_supervisor_start_failed, reason => Error});
        {'DOWN', MRef, process, Starter, Reason} ->
            erlang:error(#{what => host_supervisor_start_failed, reason => Reason})
    after ?START_TIMEOUT ->
            erlang:error(#{what => host_supervisor_start_timeout})
    end.

%% A core child stopped by release_child/1, or ignored because a test's
%% process held its name, does not run once that process is gone.
-spec ensure_core_children(pid()) -> ok.
ensure_core_children(Sup) ->
    lists:foreach(fun(Module) ->
                          case whereis(Module) of
                              undefined -> restart_core_child(Sup, Module);
                              _ -> ok
                          end
                  end, ?CORE_CHILDREN).

-spec restart_core_child(pid(), module()) -> ok.
restart_core_child(Sup, Module) ->
    try supervisor:restart_child(Sup, Module) of
        {ok, _} -> ok;
        {ok, _, _} -> ok;
        {error, running} -> ok;
        {error, restarting} -> ok;
        {error, Reason} ->
            ?LOG_WARNING(#{what => host_child_restart_failed, child => Module,
                           reason => Reason}),
            ok
    catch
        exit:Reason ->
            %% the supervisor stopped meanwhile
            ?LOG_WARNING(#{what => host_child_restart_failed, child => Module,
                           reason => Reason}),
            ok
    end.

-spec with_heir(pid() | undefined, list()) -> list().
with_heir(Sup, Opts) when is_pid(Sup), Sup =/= self() ->
    case lists:keymember(heir, 1, Opts) of
        true -> Opts;
        false -> [{heir, Sup, testing} | Opts]
    end;
with_heir(_Sup, Opts) ->
    Opts.

-spec worker_spec(module()) -> supervisor:child_spec().
worker_spec(Module) ->
    #{id => Module, start => {?MODULE, start_linked_child, [Module, []]},
      restart => permanent, shutdown => 5000, type => worker, modules => [Module]}.

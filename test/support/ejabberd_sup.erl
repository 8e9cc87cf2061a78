%% @doc The test host's `ejabberd_sup': MongooseIM's top supervisor with the
%% children the test host needs (`gen_hook', `mongoose_instrument'); other
%% services and our application's supervisors are added with `start_child/1'.
%%
%% A test boots the host with `ensure_started/0', which leaves the supervisor
%% unlinked from the caller, so that it outlives common_test's per-suite and
%% per-case processes; `stop/0' takes it down.
-module(ejabberd_sup).

-behaviour(supervisor).

-export([start_link/0, init/1]).
-export([start_child/1, start_child/2, stop_child/1, create_ets_table/2]).
%% test host extensions
-export([ensure_started/0, stop/0]).

-include_lib("kernel/include/logger.hrl").

-spec start_link() -> supervisor:startlink_ret().
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, noargs).

-spec init(noargs) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(noargs) ->
    %% created here so that the supervisor owns it (no heir transfer later)
    mongoose_wpool:ensure_started(),
    {ok, {#{strategy => one_for_one, intensity => 10, period => 1},
          [worker_spec(gen_hook), worker_spec(mongoose_instrument)]}}.

%% @doc Starts the supervisor unless it runs, not linked to the caller.
-spec ensure_started() -> {ok, pid()}.
ensure_started() ->
    case whereis(?MODULE) of
        undefined ->
            case start_link() of
                {ok, Pid} ->
                    unlink(Pid),
                    {ok, Pid};
                {error, {already_started, Pid}} ->
                    {ok, Pid}
            end;
        Pid ->
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

-spec start_child(supervisor:child_spec()) -> {ok, pid()}.
start_child(ChildSpec) ->
    start_child(?MODULE, ChildSpec).

%% @doc Starts a child, raising `{start_child_failed, Result, ChildSpec}' on
%% any result but `{ok, Pid}', as MongooseIM does.
-spec start_child(supervisor:sup_ref(), supervisor:child_spec()) -> {ok, pid()}.
start_child(SupName, ChildSpec) ->
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
    #{id => Module, start => {Module, start_link, []}, restart => permanent,
      shutdown => 5000, type => worker, modules => [Module]}.

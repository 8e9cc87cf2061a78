%% @doc Owner of one Rust pool: starts it, receives its results and closes it.
%%
%% The pool resource is published in a persistent_term so that hook handlers
%% submit straight to Rust without talking to this process. Results come back
%% as batches `{mongoose_event_pusher_nif, results, [{Tag, Outcome}]}'; for a
%% tag `{Module, Ctx}' this process calls `Module:handle_pool_result(Ctx,
%% Outcome)', which emits instrumentation events and logs.
-module(mongoose_event_pusher_pool_owner).

-behaviour(gen_server).

-include("mongoose.hrl").

%% API
-export([start_link/2, child_spec/2, get_ref/1, stats/1]).

%% For the result handlers
-export([instrument/3]).

%% gen_server callbacks
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([key/0, pool_ref/0]).

%% Identifies a pool: {Type, global | HostType, Tag}.
-type key() :: {atom(), global | binary(), atom()}.
%% The NIF's pool resource.
-type pool_ref() :: reference().

%% How long a closing pool may deliver what is queued or in flight.
-define(DRAIN_MS, 5000).
%% Extra time for the `closed' message after the drain deadline.
-define(CLOSE_MARGIN_MS, 2000).

-record(state, {key :: key(), pool :: pool_ref()}).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% The start spec behind a closure: its arguments hold the pool's secrets
%% (a broker password), and a fun prints without what it captured.
-type start_fun() :: fun(() -> mongoose_event_pusher_nif_config:start_spec()).

-spec start_link(key(), start_fun()) -> {ok, pid()} | {error, term()}.
start_link(Key, StartFun) when is_function(StartFun, 0) ->
    gen_server:start_link(?MODULE, {Key, StartFun}, []).

%% @doc A child spec for `mongoose_event_pusher_sup'; the shutdown time covers
%% the drain of the pool. Supervisor reports print a child spec, so the
%% start spec is in it only as a closure.
-spec child_spec(key(), mongoose_event_pusher_nif_config:start_spec()) ->
          supervisor:child_spec().
child_spec(Key, StartSpec) ->
    #{id => {pool, Key},
      start => {?MODULE, start_link, [Key, fun() -> StartSpec end]},
      restart => permanent,
      shutdown => ?DRAIN_MS + ?CLOSE_MARGIN_MS + 1000,
      type => worker,
      modules => [?MODULE]}.

%% @doc The running pool's resource; a persistent_term read, for the hot path.
-spec get_ref(key()) -> pool_ref() | undefined.
get_ref(Key) ->
    persistent_term:get(pt_key(Key), undefined).

%% @doc The NIF's counters of a running pool.
-spec stats(key()) -> {ok, map()} | {error, not_started}.
stats(Key) ->
    case get_ref(Key) of
        undefined -> {error, not_started};
        Pool -> {ok, mongoose_event_pusher_nif:pool_stats(Pool)}
    end.

%% @doc Emits an instrumentation event for a pool's result (or for a job
%% the pool did not take). A result that arrives after its module stopped on
%% the host type, or a pool mongoose_wpool did not start, finds its event
%% not declared: there is nothing left to count it in.
-spec instrument(mongoose_instrument:event_name(), mongoose_instrument:labels(),
                 mongoose_instrument:measurements()) -> ok.
instrument(Event, Labels, Measurements) ->
    try
        mongoose_instrument:execute(Event, Labels, Measurements)
    catch
        error:#{what := event_not_registered} -> ok
    end.

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init({key(), start_fun()}) -> {ok, #state{}} | {stop, term()}.
init({Key, StartFun}) ->
    %% terminate/2 must run on a supervisor shutdown so that the pool drains.
    process_flag(trap_exit, true),
    %% Result batches queue up while the user processes keep the schedulers
    %% busy; kept on this process's heap, each queued batch was copied by
    %% every garbage collection (in a real node under load: a 56 MB heap,
    %% collected on the dirty schedulers, 77 µs of CPU per message).
    process_flag(message_queue_data, off_heap),
    {Mod, Fun, Args} = StartFun(),
    case erlang:apply(Mod, Fun, [self() | Args]) of
        {ok, Pool} ->
            persistent_term:put(pt_key(Key), Pool),
            %% After a restart, the modules using the pool must find the new one.
            ok = mongoose_event_pusher_pool_registry:owner_started(Key),
            ?LOG_INFO(#{what => event_pusher_pool_started, pool => Key}),
            mongoose_event_pusher_spool:log_start(Key, mongoose_event_pusher_nif:pool_stats(Pool)),
            {ok, #state{key = Key, pool = Pool}};
        {error, Reason} ->
            ?LOG_ERROR(#{what => event_pusher_pool_start_failed, pool => Key, reason => Reason}),
            {stop, {pool_start_failed, Reason}}
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, unknown_call}, #state{}}.
handle_call(Request, From, State) ->
    ?LOG_WARNING(#{what => event_pusher_pool_unexpected_call, request => Request, from => From}),
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(Msg, State) ->
    ?LOG_WARNING(#{what => event_pusher_pool_unexpected_cast, msg => Msg}),
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({mongoose_event_pusher_nif, results, Results}, State) ->
    handle_results(Results, State),
    {noreply, State};
handle_info({mongoose_event_pusher_nif, event, EventTag, Event}, State = #state{key = Key}) ->
    %% Pool-level events (e.g. a broker connection opened or lost), tagged at
    %% pool start with {Module, Ctx}.
    handle_event(Key, EventTag, Event),
    {noreply, State};
handle_info({mongoose_event_pusher_nif, panic, Where}, State = #state{key = Key}) ->
    ?LOG_ERROR(#{what => event_pusher_pool_task_panicked, pool => Key, where => Where,
                 text => <<"A Rust task of the pool panicked and was restarted">>}),
    {noreply, State};
handle_info({'EXIT', _Pid, _Reason}, State) ->
    %% Only the parent can link to us; gen_server stops on its exit itself.
    {noreply, State};
handle_info(Msg, State) ->
    ?LOG_WARNING(#{what => event_pusher_pool_unexpected_info, msg => Msg}),
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(Reason, State = #state{key = Key, pool = Pool}) ->
    Ref = make_ref(),
    ok = mongoose_event_pusher_nif:pool_close(Pool, Ref, ?DRAIN_MS),
    Deadline = erlang:monotonic_time(millisecond) + ?DRAIN_MS + ?CLOSE_MARGIN_MS,
    Result = wait_closed(Ref, Deadline, State),
    %% Erased only now: until here a submit gets `{error, closed}' and is
    %% logged as a drop, which says more than "no pool".
    persistent_term:erase(pt_key(Key)),
    log_closed(Key, Reason, Result).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec pt_key(key()) -> {module(), key()}.
pt_key(Key) ->
    {?MODULE, Key}.

%% Results keep arriving while the pool drains; they are handled as usual.
-spec wait_closed(reference(), integer(), #state{}) -> {closed, map()} | timeout.
wait_closed(Ref, Deadline, State) ->
    Timeout = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {mongoose_event_pusher_nif, closed, Ref, Report} ->
            {closed, Report};
        {mongoose_event_pusher_nif, results, Results} ->
            handle_results(Results, State),
            wait_closed(Ref, Deadline, State);
        {mongoose_event_pusher_nif, event, EventTag, Event} ->
            %% e.g. the broker connections closing as the pool drains
            handle_event(State#state.key, EventTag, Event),
            wait_closed(Ref, Deadline, State)
    after Timeout ->
            timeout
    end.

-spec log_closed(key(), term(), {closed, map()} | timeout) -> ok.
log_closed(Key, Reason, {closed, Report}) ->
    ?LOG_INFO(#{what => event_pusher_pool_closed, pool => Key, reason => Reason,
                dropped => maps:get(dropped, Report, 0)});
log_closed(Key, Reason, timeout) ->
    ?LOG_WARNING(#{what => event_pusher_pool_close_timeout, pool => Key, reason => Reason,
                   text => <<"The pool did not confirm its close in time">>}).

-spec handle_results([{term(), term()}], #state{}) -> ok.
handle_results(Results, #state{key = Key}) ->
    handle_each(Results, Key).

%% A batch holds up to 256 results and this runs for every one of them: a
%% plain loop, no closure.
-spec handle_each([{term(), term()}], key()) -> ok.
handle_each([Result | Results], Key) ->
    handle_result(Key, Result),
    handle_each(Results, Key);
handle_each([], _Key) ->
    ok.

%% A failing result handler must not take the pool down: it is logged and the
%% batch goes on.
-spec handle_result(key(), {term(), term()}) -> ok.
handle_result(Key, {{Module, Ctx}, Outcome}) when is_atom(Module) ->
    try
        Module:handle_pool_result(Ctx, Outcome),
        ok
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => event_pusher_pool_result_handler_failed, pool => Key,
                         handler => Module, outcome => Outcome,
                         class => Class, reason => Reason, stacktrace => Stacktrace})
    end;
handle_result(Key, {Tag, Outcome}) ->
    ?LOG_WARNING(#{what => event_pusher_pool_unknown_tag, pool => Key, tag => Tag,
                   outcome => Outcome}).

-spec handle_event(key(), term(), term()) -> ok.
handle_event(Key, {Module, Ctx}, Event) when is_atom(Module) ->
    try
        Module:handle_pool_event(Ctx, Event),
        ok
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => event_pusher_pool_event_handler_failed, pool => Key,
                         handler => Module, event => Event,
                         class => Class, reason => Reason, stacktrace => Stacktrace})
    end;
handle_event(Key, EventTag, Event) ->
    ?LOG_WARNING(#{what => event_pusher_pool_unknown_event_tag, pool => Key,
                   tag => EventTag, event => Event}).

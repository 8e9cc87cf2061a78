%% The callers every benchmark row runs: N processes released together, each
%% making timed calls, plus what turns one run into a row's numbers.
%%
%% A caller's latencies go to an atomics array, not to a list on its heap: a
%% list growing by one cell per call would make each garbage collection of
%% the caller (a full sweep every third one under MongooseIM's
%% ERL_FULLSWEEP_AFTER 2) copy it, and that copying would be measured as the
%% cost of the call.
-module(bench_callers).

-export([run/4, measure/5, summarize/4, percentile/2, report/2, cpu_us/0, cpu_us_by_thread/0,
         cpu_split/3, clock_ticks/0]).

-type init() :: fun((pos_integer()) -> term()).
-type call() :: fun((term()) -> term()).
-type run() :: #{start := integer(),        % native monotonic time, all callers released
                 done := integer(),         % native monotonic time, last call returned
                 latencies_ns := [non_neg_integer()]}. % sorted
-type waited() :: {ok, integer()} | {timeout, non_neg_integer()}.
-export_type([run/0, waited/0]).

%% A caller that waits longer than this for its peers is a broken run.
-define(CALLERS_TIMEOUT_MS, 300000).

%% Starts Callers processes; caller I runs Init(I) once (outside the timing)
%% and, once all are released together, makes PerCaller timed calls of
%% Call(State): the caller's cost per event.
-spec run(pos_integer(), non_neg_integer(), init(), call()) -> run().
run(Callers, PerCaller, Init, Call) ->
    Self = self(),
    Go = make_ref(),
    Slots = [{I, atomics:new(max(1, PerCaller), [{signed, false}])} || I <- lists:seq(1, Callers)],
    Pids = [spawn_link(fun() -> caller(Self, Go, Init(I), Slot, PerCaller, Call) end)
            || {I, Slot} <- Slots],
    [receive {Go, ready, Pid} -> ok end || Pid <- Pids],
    Start = erlang:monotonic_time(),
    [Pid ! Go || Pid <- Pids],
    await(Pids, Go),
    Done = erlang:monotonic_time(),
    Lats = [atomics:get(Slot, K) || {_, Slot} <- Slots, K <- lists:seq(1, PerCaller)],
    #{start => Start, done => Done, latencies_ns => lists:sort(Lats)}.

caller(Parent, Go, State, Slot, N, Call) ->
    Parent ! {Go, ready, self()},
    receive Go -> ok end,
    loop(N, State, Slot, Call),
    Parent ! {Go, done, self()}.

loop(0, _State, _Slot, _Call) ->
    ok;
loop(N, State, Slot, Call) ->
    %% Each timed call starts on a fresh time slice: with 100 busy callers on
    %% 2 schedulers, a call preempted halfway would also count the time the
    %% other callers ran, which is not the cost of the call.
    erlang:yield(),
    T0 = erlang:monotonic_time(),
    _ = Call(State),
    T1 = erlang:monotonic_time(),
    atomics:put(Slot, N, erlang:convert_time_unit(T1 - T0, native, nanosecond)),
    loop(N - 1, State, Slot, Call).

await([], _Go) ->
    ok;
await(Pids, Go) ->
    receive
        {Go, done, Pid} -> await(lists:delete(Pid, Pids), Go)
    after ?CALLERS_TIMEOUT_MS ->
        erlang:error({callers_timeout, length(Pids)})
    end.

%% The measured run of a row whose finish line is Wait() (it returns the
%% native monotonic time it saw every event arrive, or {timeout, Count}):
%% Callers callers make PerCaller calls each, then Wait() runs; the client's
%% CPU time is read before the callers, after them and after Wait(), and each
%% kind of thread's before and after it all. Returns what Wait() returned and
%% the row's numbers: summarize/4's (the end is Wait()'s time, or now on a
%% timeout), the CPU per event by kind of thread (cpu_split/3), split between
%% the callers' phase and the drain, and the callers' own duration.
-spec measure(pos_integer(), non_neg_integer(), init(), call(), fun(() -> waited())) ->
          {waited(), #{atom() => number()}}.
measure(Callers, PerCaller, Init, Call, Wait) ->
    Sent = Callers * PerCaller,
    Threads0 = cpu_us_by_thread(),
    Cpu0 = cpu_us(),
    Run = run(Callers, PerCaller, Init, Call),
    CpuCallers = cpu_us(),
    Waited = Wait(),
    Cpu1 = cpu_us(),
    Threads1 = cpu_us_by_thread(),
    End = case Waited of
              {ok, T} -> T;
              {timeout, _} -> erlang:monotonic_time()
          end,
    #{start := Start, done := Done} = Run,
    Result = summarize(Sent, Run, End, Cpu1 - Cpu0),
    {Waited, (maps:merge(Result, cpu_split(Threads0, Threads1, Sent)))
                 #{callers_seconds => erlang:convert_time_unit(Done - Start, native, microsecond)
                                          / 1.0e6,
                   cpu_us_per_event_callers => (CpuCallers - Cpu0) / Sent,
                   cpu_us_per_event_drain => (Cpu1 - CpuCallers) / Sent}}.

%% The row's numbers: Events delivered between the callers' release and End
%% (native monotonic), with CpuUs of client CPU over that window.
-spec summarize(pos_integer(), run(), integer(), non_neg_integer()) -> #{atom() => number()}.
summarize(Events, #{start := Start, latencies_ns := Lats}, End, CpuUs) ->
    Seconds = erlang:convert_time_unit(End - Start, native, microsecond) / 1.0e6,
    #{events => Events,
      seconds => Seconds,
      events_per_s => Events / Seconds,
      p50_us => percentile(Lats, 0.50) / 1000,
      p99_us => percentile(Lats, 0.99) / 1000,
      cpu_us_per_event => CpuUs / Events}.

%% Nearest-rank percentile of a sorted, non-empty list.
-spec percentile([number()], float()) -> number().
percentile(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, ceil(P * N))), Sorted).

%% Prints the row's result as one line of key=value pairs for the script.
-spec report(atom() | string(), #{atom() => number() | atom() | string()}) -> ok.
report(Row, Result) ->
    Pairs = [io_lib:format(" ~s=~s", [K, fmt(V)]) || {K, V} <- lists:sort(maps:to_list(Result))],
    io:format("RESULT row=~s~s~n", [Row, Pairs]).

fmt(V) when is_float(V) -> float_to_list(V, [{decimals, 3}, compact]);
fmt(V) when is_integer(V) -> integer_to_list(V);
fmt(V) when is_atom(V) -> atom_to_list(V);
fmt(V) when is_list(V) -> V.

%% CPU time (user + system) of this OS process, all threads: schedulers,
%% dirty schedulers, and any threads a NIF started (the tokio runtime), which
%% erlang:statistics(runtime) would miss.
-spec cpu_us() -> non_neg_integer().
cpu_us() ->
    {ok, Stat} = file:read_file("/proc/self/stat"),
    %% The command name (2nd field) may hold spaces; fields restart after ')'.
    [_, Rest] = string:split(Stat, <<")">>, trailing),
    Fields = binary:split(Rest, <<" ">>, [global, trim_all]),
    %% Fields 14 and 15 of proc(5): utime and stime, in clock ticks.
    Ticks = binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)),
    Ticks * 1000000 div clock_ticks().

%% CPU time (user + system) of this OS process's threads, in microseconds,
%% summed by kind: BEAM schedulers (normal, dirty), the NIF's tokio runtime,
%% its reporter threads, lapin's I/O threads, and the rest (poll threads, aux...).
-spec cpu_us_by_thread() ->
          #{sched | dirty | rt | reporter | lapin | other => non_neg_integer()}.
cpu_us_by_thread() ->
    Tasks = filelib:wildcard("/proc/self/task/*/stat"),
    lists:foldl(fun(Path, Acc) ->
                        case file:read_file(Path) of
                            {ok, Stat} ->
                                {Comm, Us} = thread_cpu(Stat),
                                maps:update_with(thread_kind(Comm), fun(V) -> V + Us end, Us, Acc);
                            {error, _} ->
                                Acc % the thread ended meanwhile
                        end
                end, #{sched => 0, dirty => 0, rt => 0, reporter => 0, lapin => 0, other => 0}, Tasks).

thread_cpu(Stat) ->
    [Head, Rest] = string:split(Stat, <<")">>, trailing),
    [_Pid, Comm] = string:split(Head, <<"(">>),
    Fields = binary:split(Rest, <<" ">>, [global, trim_all]),
    Ticks = binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)),
    {Comm, Ticks * 1000000 div clock_ticks()}.

thread_kind(Comm) ->
    case Comm of
        <<"event_pusher_rt", _/binary>> -> rt;
        <<"event_pusher_", _/binary>> -> reporter;
        <<"lapin", _/binary>> -> lapin;
        _ ->
            case binary:match(Comm, <<"dirty">>) of
                nomatch ->
                    case binary:match(Comm, <<"scheduler">>) of
                        nomatch -> other;
                        _ -> sched
                    end;
                _ ->
                    dirty
            end
    end.

%% Per event, the CPU each kind of thread spent between two cpu_us_by_thread/0 calls.
-spec cpu_split(map(), map(), pos_integer()) -> #{atom() => float()}.
cpu_split(Before, After, Events) ->
    maps:from_list([{list_to_atom("cpu_us_per_event_" ++ atom_to_list(K)),
                     (maps:get(K, After) - maps:get(K, Before)) / Events}
                    || K <- maps:keys(After)]).

%% The kernel's clock ticks per second (/proc times are counted in them).
-spec clock_ticks() -> pos_integer().
clock_ticks() ->
    case persistent_term:get({?MODULE, clk_tck}, undefined) of
        undefined ->
            Tck = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
            persistent_term:put({?MODULE, clk_tck}, Tck),
            Tck;
        Tck ->
            Tck
    end.

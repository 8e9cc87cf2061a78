%% Shared pieces of the RabbitMQ benchmark rows: caller processes that time
%% each call, the BEAM's CPU time (all threads), percentiles, the broker's
%% queue length as the finish line, and the one result line the script turns
%% into the table.
-module(bench_rabbit_lib).

-export([run_callers/4, summarize/4, cpu_us/0, percentile/2, wait_queue/4,
         report/2, int_env/2, env/2]).

-type run() :: #{start := integer(),        % native monotonic time, callers released
                 done := integer(),         % native monotonic time, last call returned
                 latencies_ns := [non_neg_integer()]}. % sorted
-export_type([run/0]).

%% A caller that waits longer than this for its peers is a broken run.
-define(CALLERS_TIMEOUT_MS, 300000).

%% @doc Starts Callers processes; each runs Init(Index) once (outside the
%% timing), then, once all are released together, PerCaller timed calls of
%% Call(State): the caller's cost per event.
-spec run_callers(pos_integer(), non_neg_integer(), fun((pos_integer()) -> term()),
                  fun((term()) -> term())) -> run().
run_callers(Callers, PerCaller, Init, Call) ->
    Self = self(),
    Go = make_ref(),
    Pids = [spawn_link(fun() -> caller(Self, Go, Init(I), PerCaller, Call) end)
            || I <- lists:seq(1, Callers)],
    [receive {Go, ready, Pid} -> ok end || Pid <- Pids],
    Start = erlang:monotonic_time(),
    [Pid ! Go || Pid <- Pids],
    Lats = collect(Pids, Go, []),
    Done = erlang:monotonic_time(),
    #{start => Start, done => Done, latencies_ns => lists:sort(Lats)}.

caller(Parent, Go, State, N, Call) ->
    Parent ! {Go, ready, self()},
    receive Go -> ok end,
    Parent ! {Go, self(), caller_loop(N, State, Call, [])}.

caller_loop(0, _State, _Call, Acc) ->
    Acc;
caller_loop(N, State, Call, Acc) ->
    %% Each timed call starts on a fresh time slice: with 100 busy callers on
    %% 2 schedulers, a call preempted halfway would also count the time the
    %% other callers ran, which is not the cost of the call.
    erlang:yield(),
    T0 = erlang:monotonic_time(),
    _ = Call(State),
    T1 = erlang:monotonic_time(),
    caller_loop(N - 1, State, Call, [erlang:convert_time_unit(T1 - T0, native, nanosecond) | Acc]).

collect([], _Go, Acc) ->
    Acc;
collect(Pids, Go, Acc) ->
    receive
        {Go, Pid, Lats} -> collect(lists:delete(Pid, Pids), Go, Lats ++ Acc)
    after ?CALLERS_TIMEOUT_MS ->
        erlang:error({callers_timeout, length(Pids)})
    end.

%% @doc CPU time (user + system) of this OS process, all threads: schedulers,
%% dirty schedulers, the NIF's tokio runtime and lapin's I/O threads, which
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

clock_ticks() ->
    case persistent_term:get({?MODULE, clk_tck}, undefined) of
        undefined ->
            Tck = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
            persistent_term:put({?MODULE, clk_tck}, Tck),
            Tck;
        Tck ->
            Tck
    end.

%% @doc Nearest-rank percentile of a sorted, non-empty list.
-spec percentile([number()], float()) -> number().
percentile(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, ceil(P * N))), Sorted).

%% @doc Polls the broker until Queue holds Expected messages. Returns the
%% native monotonic time it saw them, or {timeout, Count}.
-spec wait_queue(ep_amqp:conn(), binary(), non_neg_integer(), pos_integer()) ->
          {ok, integer()} | {timeout, non_neg_integer()}.
wait_queue(Conn, Queue, Expected, TimeoutMs) ->
    poll_queue(Conn, Queue, Expected, erlang:monotonic_time(millisecond) + TimeoutMs).

poll_queue(Conn, Queue, Expected, Deadline) ->
    Count = ep_amqp:queue_length(Conn, Queue),
    Now = erlang:monotonic_time(),
    if
        Count >= Expected ->
            {ok, Now};
        true ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> {timeout, Count};
                false ->
                    %% Short enough not to blur the end of a run of seconds.
                    receive after 2 -> ok end,
                    poll_queue(Conn, Queue, Expected, Deadline)
            end
    end.

%% @doc The row's numbers: Events delivered between the callers' release and
%% End (native monotonic), with CpuUs of client CPU over that window.
-spec summarize(pos_integer(), run(), integer(), non_neg_integer()) -> #{atom() => number()}.
summarize(Events, #{start := Start, latencies_ns := Lats}, End, CpuUs) ->
    Seconds = erlang:convert_time_unit(End - Start, native, microsecond) / 1.0e6,
    #{events => Events,
      seconds => Seconds,
      events_per_s => Events / Seconds,
      p50_us => percentile(Lats, 0.50) / 1000,
      p99_us => percentile(Lats, 0.99) / 1000,
      cpu_us_per_event => CpuUs / Events}.

%% @doc Prints the row's result as one line of key=value pairs for the script.
-spec report(string(), #{atom() => number() | atom() | string()}) -> ok.
report(Row, Result) ->
    Pairs = [io_lib:format(" ~s=~s", [K, fmt(V)]) || {K, V} <- lists:sort(maps:to_list(Result))],
    io:format("RESULT row=~s~s~n", [Row, Pairs]).

fmt(V) when is_float(V) -> float_to_list(V, [{decimals, 3}, compact]);
fmt(V) when is_integer(V) -> integer_to_list(V);
fmt(V) when is_atom(V) -> atom_to_list(V);
fmt(V) when is_list(V) -> V.

%% @doc An integer from the environment, or Default.
-spec int_env(string(), integer()) -> integer().
int_env(Name, Default) ->
    list_to_integer(env(Name, integer_to_list(Default))).

-spec env(string(), string()) -> string().
env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> V
    end.

%% Shared pieces of the HTTP benchmark rows: caller processes that time each
%% call, the BEAM's own CPU time, percentiles, the sink's counters, and the
%% one result line the script turns into the table.
-module(bench_http_lib).

-export([run_callers/4, summarize/4, cpu_us/0, cpu_us_by_thread/0, cpu_split/3,
         percentile/2, sink_count/1, sink_reset/1,
         wait_for_sink/3, report/2, the_body/0, the_path/0, the_headers/0,
         int_env/2]).

-type prepare() :: fun((pos_integer()) -> term()).
-type call() :: fun((term()) -> term()).
-type run() :: #{start := integer(),        % native monotonic time, all callers released
                 done := integer(),         % native monotonic time, last call returned
                 latencies_ns := [non_neg_integer()]}. % sorted
-export_type([run/0]).

%% A caller that waits longer than this for its peers is a broken run.
-define(CALLERS_TIMEOUT_MS, 120000).
-define(SINK_TIMEOUT_MS, 5000).

%% The request every row sends: what mod_event_pusher_http_defaults makes of
%% the benchmark's chat message (alice@localhost -> bob, "Hello from the benchmark").
-spec the_body() -> binary().
the_body() ->
    <<"author=alice&server=localhost&receiver=bob&message=Hello+from+the+benchmark">>.

-spec the_path() -> binary().
the_path() -> <<"/notify">>.

-spec the_headers() -> [{binary(), binary()}].
the_headers() -> [{<<"content-type">>, <<"application/x-www-form-urlencoded">>}].

%% Starts Callers processes; once all exist they are released together and each
%% makes PerCaller calls. Prepare(I) builds the argument outside the timed part,
%% Call(Arg) is what is timed (the caller's cost per event).
-spec run_callers(pos_integer(), pos_integer(), prepare(), call()) -> run().
run_callers(Callers, PerCaller, Prepare, Call) ->
    Self = self(),
    Go = make_ref(),
    Pids = [spawn_link(fun() -> caller(Self, Go, PerCaller, Prepare, Call) end)
            || _ <- lists:seq(1, Callers)],
    Start = erlang:monotonic_time(),
    [Pid ! Go || Pid <- Pids],
    Lats = collect(Pids, Go, []),
    Done = erlang:monotonic_time(),
    #{start => Start, done => Done, latencies_ns => lists:sort(Lats)}.

caller(Parent, Go, N, Prepare, Call) ->
    receive Go -> ok end,
    Parent ! {Go, self(), caller_loop(N, Prepare, Call, [])}.

caller_loop(0, _Prepare, _Call, Acc) ->
    Acc;
caller_loop(N, Prepare, Call, Acc) ->
    Arg = Prepare(N),
    %% Start the timed call on a fresh time slice: with 100 busy callers on a
    %% few schedulers, a call preempted halfway would otherwise also count the
    %% time the other 99 callers run, which is not the cost of the call.
    erlang:yield(),
    T0 = erlang:monotonic_time(),
    _ = Call(Arg),
    T1 = erlang:monotonic_time(),
    caller_loop(N - 1, Prepare, Call,
                [erlang:convert_time_unit(T1 - T0, native, nanosecond) | Acc]).

collect([], _Go, Acc) ->
    Acc;
collect(Pids, Go, Acc) ->
    receive
        {Go, Pid, Lats} -> collect(lists:delete(Pid, Pids), Go, Lats ++ Acc)
    after ?CALLERS_TIMEOUT_MS ->
        erlang:error({callers_timeout, length(Pids)})
    end.

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
%% its reporter threads, and the rest (poll threads, aux...).
-spec cpu_us_by_thread() -> #{sched | dirty | rt | reporter | other => non_neg_integer()}.
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
                end, #{sched => 0, dirty => 0, rt => 0, reporter => 0, other => 0}, Tasks).

thread_cpu(Stat) ->
    [Head, Rest] = string:split(Stat, <<")">>, trailing),
    [_Pid, Comm] = string:split(Head, <<"(">>),
    Fields = binary:split(Rest, <<" ">>, [global, trim_all]),
    Ticks = binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)),
    {Comm, Ticks * 1000000 div clock_ticks()}.

thread_kind(Comm) ->
    case Comm of
        <<"event_pusher_rt", _/binary>> -> rt;
        <<"event_pusher_re", _/binary>> -> reporter;
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

clock_ticks() ->
    case persistent_term:get({?MODULE, clk_tck}, undefined) of
        undefined ->
            Tck = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
            persistent_term:put({?MODULE, clk_tck}, Tck),
            Tck;
        Tck ->
            Tck
    end.

%% Nearest-rank percentile of a sorted, non-empty list.
-spec percentile([number()], float()) -> number().
percentile(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, ceil(P * N))), Sorted).

%% The sink's counters: requests and body bytes received since its last reset.
-spec sink_count(inet:port_number()) -> {non_neg_integer(), non_neg_integer()}.
sink_count(Port) -> sink_get(Port, "/count").

%% Zeroes the sink's counters; returns what they held.
-spec sink_reset(inet:port_number()) -> {non_neg_integer(), non_neg_integer()}.
sink_reset(Port) -> sink_get(Port, "/reset").

sink_get(Port, Path) ->
    {ok, Sock} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                 [binary, {active, false}, {packet, raw}], ?SINK_TIMEOUT_MS),
    ok = gen_tcp:send(Sock, ["GET ", Path, " HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                                           "connection: close\r\n\r\n"]),
    Reply = recv_all(Sock, []),
    ok = gen_tcp:close(Sock),
    [_Head, Body] = string:split(Reply, <<"\r\n\r\n">>),
    [Requests, Bytes] = binary:split(Body, [<<" ">>, <<"\n">>], [global, trim_all]),
    {binary_to_integer(Requests), binary_to_integer(Bytes)}.

recv_all(Sock, Acc) ->
    case gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS) of
        {ok, Data} -> recv_all(Sock, [Acc, Data]);
        {error, closed} -> iolist_to_binary(Acc)
    end.

%% Polls the sink until it has counted Expected requests. Returns the time it
%% saw them (native monotonic), or {timeout, Count} at the deadline.
%%
%% The polls are part of the measured process's CPU time, not of the path
%% measured, so they are made cheap: one keep-alive connection for all of
%% them, and a pause that follows the remaining work (half the time the rest
%% should take at the rate seen so far, 1 to 20 ms), so that the end is still
%% seen within about a millisecond.
-spec wait_for_sink(inet:port_number(), non_neg_integer(), pos_integer()) ->
    {ok, integer()} | {timeout, non_neg_integer()}.
wait_for_sink(Port, Expected, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    {ok, Sock} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}, {packet, raw}],
                                 ?SINK_TIMEOUT_MS),
    try
        poll_sink(Sock, Expected, Deadline, undefined)
    after
        gen_tcp:close(Sock)
    end.

poll_sink(Sock, Expected, Deadline, Last) ->
    Count = keepalive_count(Sock),
    Now = erlang:monotonic_time(),
    case Count >= Expected of
        true ->
            {ok, Now};
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    {timeout, Count};
                false ->
                    timer:sleep(pause_ms(Expected - Count, Count, Now, Last)),
                    poll_sink(Sock, Expected, Deadline, {Count, Now})
            end
    end.

pause_ms(Remaining, Count, Now, {LastCount, LastTime}) when Count > LastCount ->
    NsPerEvent = erlang:convert_time_unit(Now - LastTime, native, nanosecond)
        / (Count - LastCount),
    max(1, min(20, round(Remaining * NsPerEvent / 2.0e6)));
pause_ms(_Remaining, _Count, _Now, _Last) ->
    1.

%% GET /count on an open keep-alive connection.
keepalive_count(Sock) ->
    ok = gen_tcp:send(Sock, <<"GET /count HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n">>),
    ok = inet:setopts(Sock, [{packet, http_bin}]),
    {ok, {http_response, _, 200, _}} = gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS),
    Length = content_length(Sock, 0),
    ok = inet:setopts(Sock, [{packet, raw}]),
    {ok, Body} = gen_tcp:recv(Sock, Length, ?SINK_TIMEOUT_MS),
    [Requests, _Bytes] = binary:split(Body, [<<" ">>, <<"\n">>], [global, trim_all]),
    binary_to_integer(Requests).

content_length(Sock, Length) ->
    case gen_tcp:recv(Sock, 0, ?SINK_TIMEOUT_MS) of
        {ok, {http_header, _, 'Content-Length', _, Value}} ->
            content_length(Sock, binary_to_integer(Value));
        {ok, {http_header, _, _, _, _}} ->
            content_length(Sock, Length);
        {ok, http_eoh} ->
            Length
    end.

%% Prints the row's result as one line of key=value pairs for the script.
-spec report(atom(), #{atom() => number() | atom()}) -> ok.
report(Row, Result) ->
    Pairs = [io_lib:format(" ~s=~s", [K, fmt(V)]) || {K, V} <- lists:sort(maps:to_list(Result))],
    io:format("RESULT row=~s~s~n", [Row, Pairs]).

fmt(V) when is_float(V) -> float_to_list(V, [{decimals, 3}, compact]);
fmt(V) when is_integer(V) -> integer_to_list(V);
fmt(V) when is_atom(V) -> atom_to_list(V).

%% An integer from the environment, or Default.
-spec int_env(string(), integer()) -> integer().
int_env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> list_to_integer(V)
    end.

%% The row's numbers from one measured run. End is when the last event was
%% known delivered (native monotonic time); CpuUs the BEAM's CPU time over it.
-spec summarize(pos_integer(), run(), integer(), non_neg_integer()) -> #{atom() => number()}.
summarize(Events, #{start := Start, latencies_ns := Lats}, End, CpuUs) ->
    Seconds = erlang:convert_time_unit(End - Start, native, microsecond) / 1.0e6,
    #{events => Events,
      seconds => Seconds,
      events_per_s => Events / Seconds,
      p50_us => percentile(Lats, 0.50) / 1000,
      p99_us => percentile(Lats, 0.99) / 1000,
      cpu_us_per_event => CpuUs / Events}.

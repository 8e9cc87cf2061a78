%% The overload row (scripts/bench_overload.sh), in its own BEAM: the hook's
%% cost per call through mod_event_pusher_rabbit with the broker up (every
%% event queued and published) and with the broker's app stopped and a
%% small queue (nearly every event dropped: counted, and logged by
%% mongoose_event_pusher_drop_log at level warning, the node's default).
%% Prints both rows and the ratio of their mean and p99 per call.
-module(bench_overload).

-export([main/0, main/1]).

-define(EXCHANGE, <<"chat_msg">>).

%% `erl -run bench_overload main' with no arguments calls main/0.
-spec main() -> no_return().
main() ->
    main([]).

-spec main([string()]) -> no_return().
main([]) ->
    bench_host:main("overload", fun row/0).

row() ->
    Events = bench_host:int_env("BENCH_EVENTS", 100000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    PerCaller = Events div Callers,
    Host = bench_host:host_type(),
    ok = ep_amqp:start(),
    %% A previous user of the broker may have just started its app again.
    ok = ep_amqp:wait_up(60000),
    Normal = run(normal, Events, Callers, PerCaller, Host),
    Stopped = try run(stopped, 100, Callers, PerCaller, Host)
              after ok = ep_amqp:start_app(60000)
              end,
    io:format("RESULT overload ratio_mean=~.2f ratio_p99=~.2f~n",
              [ratio(mean, Stopped, Normal), ratio(p99, Stopped, Normal)]).

%% Queue: large enough for every event when the broker is up; 100 when
%% it is down, so that nearly every event is dropped.
run(Name, QueueLen, Callers, PerCaller, Host) ->
    ok = bench_host:boot(io_lib:format(
                           "[outgoing_pools.rabbit.event_pusher]~n"
                           "  workers = 1~n"
                           "  max_worker_queue_len = ~b~n"
                           "  [outgoing_pools.rabbit.event_pusher.connection]~n"
                           "    host = \"127.0.0.1\"~n~n"
                           "[modules.mod_event_pusher.rabbit.chat_msg_exchange]~n",
                           [QueueLen])),
    NewAcc = fun(I) -> bench_xmpp:chat_acc(<<"user", (integer_to_binary(I))/binary>>, Host) end,
    RunHook = fun(Acc) -> bench_xmpp:send_message(Host, Acc) end,
    _ = bench_callers:run(Callers, 20, NewAcc, RunHook),
    %% The module declares its exchange at start: the broker stops after it.
    Name =:= stopped andalso ep_amqp:stop_app(),
    #{start := T0, done := T1, latencies_ns := Lats} =
        bench_callers:run(Callers, PerCaller, NewAcc, RunHook),
    Stats = mongoose_event_pusher_nif:pool_stats(
              mongoose_event_pusher_pool_registry:lookup(rabbit, Host, event_pusher)),
    Dropped = lists:sum([V || {K, V} <- maps:to_list(Stats),
                              lists:prefix("dropped", atom_to_list(K))]),
    bench_host:shutdown(),
    N = length(Lats),
    Row = #{mean => lists:sum(Lats) / N / 1000,
            p50 => bench_callers:percentile(Lats, 0.5) / 1000,
            p99 => bench_callers:percentile(Lats, 0.99) / 1000,
            rate => N / (erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6),
            dropped => Dropped},
    io:format("RESULT overload row=~s calls=~b mean_us=~.2f p50_us=~.2f p99_us=~.2f "
              "calls_per_s=~b dropped=~b~n",
              [Name, N, maps:get(mean, Row), maps:get(p50, Row), maps:get(p99, Row),
               round(maps:get(rate, Row)), Dropped]),
    Row.

ratio(Key, A, B) ->
    maps:get(Key, A) / max(maps:get(Key, B), 1.0e-9).

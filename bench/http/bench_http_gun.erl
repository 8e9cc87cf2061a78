%% Row (b): MongooseIM's way of posting an event. Callers each make a
%% synchronous POST through a pool of workers that own one keep-alive gun
%% connection each; the worker is chosen as wpool's default `best_worker`
%% strategy does (the shortest message queue).
-module(bench_http_gun).

-export([main/1]).

%% MongooseIM's defaults: http `request_timeout` and wpool `call_timeout`.
-define(REQUEST_TIMEOUT_MS, 2000).
-define(WARMUP_EVENTS, 2000).
%% The request every row sends: what mod_event_pusher_http_defaults makes of
%% the benchmark's chat message (alice@localhost -> bob, "Hello from the benchmark").
-define(PATH, <<"/notify">>).
-define(HEADERS, [{<<"content-type">>, <<"application/x-www-form-urlencoded">>}]).
-define(BODY, <<"author=alice&server=localhost&receiver=bob&message=Hello+from+the+benchmark">>).

%% Args: [SinkPort]. Events, callers and workers come from BENCH_EVENTS,
%% BENCH_CALLERS and BENCH_WORKERS.
-spec main([string()]) -> no_return().
main([PortStr]) ->
    bench_host:main(b, fun() -> row(list_to_integer(PortStr)) end).

row(Port) ->
    Events = bench_host:int_env("BENCH_EVENTS", 100000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    NWorkers = bench_host:int_env("BENCH_WORKERS", 10),
    {ok, _} = application:ensure_all_started(gun),
    Workers = list_to_tuple([start_worker(Port) || _ <- lists:seq(1, NWorkers)]),
    Call = fun(_) -> post(Workers) end,
    NoPrep = fun(_) -> ok end,
    _ = bench_callers:run(Callers, max(1, ?WARMUP_EVENTS div Callers), NoPrep, Call),
    _ = bench_sink:reset(Port),
    Cpu0 = bench_callers:cpu_us(),
    Run = bench_callers:run(Callers, Events div Callers, NoPrep, Call),
    Cpu1 = bench_callers:cpu_us(),
    Sent = Callers * (Events div Callers),
    {Counted, Bytes} = bench_sink:count(Port),
    Result = bench_callers:summarize(Sent, Run, maps:get(done, Run), Cpu1 - Cpu0),
    bench_callers:report(b, Result#{sink_count => Counted, sink_bytes => Bytes}).

start_worker(Port) ->
    {ok, Pid} = bench_http_gun_worker:start_link(Port),
    Pid.

post(Workers) ->
    {ok, 200} = bench_http_gun_worker:post(best_worker(Workers), ?PATH, ?HEADERS, ?BODY,
                                           ?REQUEST_TIMEOUT_MS).

best_worker(Workers) ->
    best_worker(Workers, tuple_size(Workers), undefined, infinity).

best_worker(_Workers, 0, Best, _BestLen) ->
    Best;
best_worker(Workers, I, Best, BestLen) ->
    W = element(I, Workers),
    {message_queue_len, Len} = erlang:process_info(W, message_queue_len),
    case Len < BestLen of
        true -> best_worker(Workers, I - 1, W, Len);
        false -> best_worker(Workers, I - 1, Best, BestLen)
    end.

%% Row (a): our mod_event_pusher http backend, booted the way MongooseIM boots
%% (doc/compatibility.md §1) on the test host. Callers run the `user_send_message` hook for
%% chat messages; the caller's cost is the hook run, and the row's time ends
%% when the sink has counted every event.
-module(bench_http_ours).

-export([main/1]).

-define(WARMUP_EVENTS, 2000).
-define(SINK_DEADLINE_MS, 60000).
%% The warm-up is small: if it has not arrived by then, the path is broken.
-define(WARMUP_DEADLINE_MS, 10000).

%% Args: [SinkPort]. Events, callers and workers come from BENCH_EVENTS,
%% BENCH_CALLERS and BENCH_WORKERS.
-spec main([string()]) -> no_return().
main([PortStr]) ->
    %% BENCH_SPOOL=never|interval: the same row with the disk spool.
    Spool = os:getenv("BENCH_SPOOL", ""),
    Row = case Spool of
              "never" -> an;
              "interval" -> ai;
              _ -> a
          end,
    bench_host:main(Row, fun() -> row(Row, list_to_integer(PortStr), Spool) end).

row(Row, Port, Spool) ->
    Events = bench_host:int_env("BENCH_EVENTS", 100000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    Workers = bench_host:int_env("BENCH_WORKERS", 10),
    PerCaller = Events div Callers,
    Sent = Callers * PerCaller,
    Host = bench_host:host_type(),
    ok = bench_host:boot([toml(Port, Workers, Sent), spool_toml(Spool)]),
    %% One accumulator, built once: making it is the c2s's work, not the
    %% hook's, and would otherwise count in the client CPU per event.
    Acc = bench_xmpp:chat_acc(<<"alice">>, Host),
    Prepare = fun(_) -> Acc end,
    RunHook = fun(A) -> bench_xmpp:send_message(Host, A) end,
    Warmup = Callers * max(1, ?WARMUP_EVENTS div Callers),
    _ = bench_callers:run(Callers, Warmup div Callers, Prepare, RunHook),
    case bench_sink:wait_for(Port, Warmup, ?WARMUP_DEADLINE_MS) of
        {ok, _} -> ok;
        {timeout, Got} -> error({warmup_not_delivered, #{sent => Warmup, sink_count => Got}})
    end,
    _ = bench_sink:reset(Port),
    %% BENCH_MSACC=1: where the schedulers' time went (emulator, nif,
    %% gc, busy wait...) over the measured window, on stderr.
    Msacc = os:getenv("BENCH_MSACC") =:= "1",
    _ = Msacc andalso msacc:start(),
    %% Where the CPU went: while the callers ran (hooks, NIF submits, and
    %% whatever the pool did meanwhile), then until the sink had it all.
    {_Waited, Result} = bench_callers:measure(Callers, PerCaller, Prepare, RunHook,
                                              fun() -> bench_sink:wait_for(Port, Sent,
                                                                           ?SINK_DEADLINE_MS) end),
    _ = Msacc andalso begin
                          _ = msacc:stop(),
                          msacc:print(standard_error, msacc:stats(), #{}) =:= ok
                      end,
    {Counted, Bytes} = bench_sink:count(Port),
    %% Retried attempts explain a sink count above the events sent.
    Stats = pool_stats(Host),
    bench_callers:report(Row, Result#{sink_count => Counted, sink_bytes => Bytes,
                                    retried => maps:get(retried, Stats, 0),
                                    failed_attempts => maps:get(failed_attempts, Stats, 0)}),
    bench_host:shutdown().

%% The queue must hold every event at once: callers submit far faster than one
%% local sink drains, and this row measures delivery, not overload.
toml(Port, Workers, Events) ->
    io_lib:format("[outgoing_pools.http.bench]~n"
                  "  workers = ~b~n"
                  "  max_worker_queue_len = ~b~n"
                  "  connection.host = \"http://127.0.0.1:~b\"~n~n"
                  "[modules.mod_event_pusher.http]~n"
                  "  handlers = [{pool_name = \"bench\", path = \"/notify\"}]~n",
                  [Workers, (Events + Workers - 1) div Workers, Port]).

spool_toml("") ->
    "";
spool_toml(Fsync) ->
    Dir = filename:join(["/tmp", "ep-bench-spool", "http-" ++ os:getpid()]),
    _ = file:del_dir_r(Dir),
    io_lib:format("[modules.mod_event_pusher.http.spool]~n"
                  "  directory = \"~s\"~n"
                  "  max_bytes = 8000000000~n"
                  "  fsync = \"~s\"~n", [Dir, Fsync]).

%% The pool's counters; none from a build before the pool registry (an
%% OURS_LIB snapshot of bench/ab_http.sh).
pool_stats(Host) ->
    try mongoose_event_pusher_pool_registry:lookup(http, Host, bench) of
        undefined -> #{};
        Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
    catch error:undef -> #{}
    end.

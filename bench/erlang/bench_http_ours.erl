%% Row (a): our mod_event_pusher http backend, booted the way MongooseIM boots
%% (doc/compatibility.md §1) on the test host. Callers run the `user_send_message` hook for
%% chat messages; the caller's cost is the hook run, and the row's time ends
%% when the sink has counted every event.
-module(bench_http_ours).

-export([main/1]).


-define(HOST, <<"localhost">>).
-define(WARMUP_EVENTS, 2000).
-define(SINK_DEADLINE_MS, 60000).
%% The warm-up is small: if it has not arrived by then, the path is broken.
-define(WARMUP_DEADLINE_MS, 10000).

%% Args: [SinkPort]. Events, callers and workers come from BENCH_EVENTS,
%% BENCH_CALLERS and BENCH_WORKERS.
-spec main([string()]) -> no_return().
main([PortStr]) ->
    Port = list_to_integer(PortStr),
    Events = bench_http_lib:int_env("BENCH_EVENTS", 100000),
    Callers = bench_http_lib:int_env("BENCH_CALLERS", 100),
    Workers = bench_http_lib:int_env("BENCH_WORKERS", 10),
    PerCaller = Events div Callers,
    Sent = Callers * PerCaller,
    %% Hook errors and dropped events are logged at warning or above; info
    %% lines would only measure the logger.
    ok = logger:set_primary_config(level, warning),
    Toml = write_config(Port, Workers, Sent),
    try
        boot(Toml),
        %% One accumulator, built once: making it is the c2s's work, not the
        %% hook's, and would otherwise count in the client CPU per event.
        Acc = new_acc(),
        Prepare = fun(_) -> Acc end,
        Warmup = Callers * max(1, ?WARMUP_EVENTS div Callers),
        _ = bench_callers:run(Callers, Warmup div Callers, Prepare, fun run_hook/1),
        case bench_http_lib:wait_for_sink(Port, Warmup, ?WARMUP_DEADLINE_MS) of
            {ok, _} -> ok;
            {timeout, Got} -> error({warmup_not_delivered, #{sent => Warmup, sink_count => Got}})
        end,
        _ = bench_http_lib:sink_reset(Port),
        %% BENCH_MSACC=1: where the schedulers' time went (emulator, nif,
        %% gc, busy wait...) over the measured window, on stderr.
        Msacc = os:getenv("BENCH_MSACC") =:= "1",
        _ = Msacc andalso msacc:start(),
        Threads0 = bench_callers:cpu_us_by_thread(),
        Cpu0 = bench_callers:cpu_us(),
        Run = bench_callers:run(Callers, PerCaller, Prepare, fun run_hook/1),
        CpuCallers = bench_callers:cpu_us(),
        Waited = bench_http_lib:wait_for_sink(Port, Sent, ?SINK_DEADLINE_MS),
        Cpu1 = bench_callers:cpu_us(),
        Threads1 = bench_callers:cpu_us_by_thread(),
        _ = Msacc andalso begin
                              _ = msacc:stop(),
                              msacc:print(standard_error, msacc:stats(), #{}) =:= ok
                          end,
        {Counted, Bytes} = bench_http_lib:sink_count(Port),
        %% Retried attempts explain a sink count above the events sent.
        Stats = case mongoose_event_pusher_pool_registry:lookup(http, ?HOST, bench) of
                    undefined -> #{};
                    Pool -> mongoose_event_pusher_nif:pool_stats(Pool)
                end,
        End = case Waited of
                  {ok, T} -> T;
                  {timeout, _} -> erlang:monotonic_time()
              end,
        Result = bench_callers:summarize(Sent, Run, End, Cpu1 - Cpu0),
        CallersSeconds = erlang:convert_time_unit(maps:get(done, Run) - maps:get(start, Run),
                                                  native, microsecond) / 1.0e6,
        %% Where the CPU went: while the callers ran (hooks, NIF submits, and
        %% whatever the pool did meanwhile), then until the sink had it all.
        Split = bench_callers:cpu_split(Threads0, Threads1, Sent),
        bench_callers:report(a, (maps:merge(Result, Split))#{sink_count => Counted, sink_bytes => Bytes,
                                         callers_seconds => CallersSeconds,
                                         cpu_us_per_event_callers => (CpuCallers - Cpu0) / Sent,
                                         cpu_us_per_event_drain => (Cpu1 - CpuCallers) / Sent,
                                         retried => maps:get(retried, Stats, 0),
                                         failed_attempts => maps:get(failed_attempts, Stats, 0)}),
        shutdown()
    after
        file:delete(Toml)
    end,
    halt(0).

%% MongooseIM's boot sequence (doc/compatibility.md §1), after its top supervisor (which
%% runs gen_hook and mongoose_instrument) is up.
boot(Toml) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    Opts = mongoose_config_parser:parse_file(Toml),
    ok = mongoose_config:set_opts(maps:from_list(Opts)),
    _ = mongoose_wpool:start_configured_pools(),
    ok = mongoose_modules:start(),
    _ = gen_hook:reload_hooks(),
    ok.

shutdown() ->
    ok = mongoose_modules:stop(),
    mongoose_config:erase_opts(),
    ejabberd_sup:stop().

%% The queue must hold every event at once: callers submit far faster than one
%% local sink drains, and this row measures delivery, not overload.
write_config(Port, Workers, Events) ->
    QueueLen = (Events + Workers - 1) div Workers,
    Path = filename:join(os:getenv("TMPDIR", "/tmp"),
                         "bench_http_" ++ os:getpid() ++ ".toml"),
    Toml = io_lib:format(
             "[general]~n"
             "  hosts = [\"localhost\"]~n"
             "  default_server_domain = \"localhost\"~n~n"
             "[outgoing_pools.http.bench]~n"
             "  workers = ~b~n"
             "  max_worker_queue_len = ~b~n"
             "  connection.host = \"http://127.0.0.1:~b\"~n~n"
             "[modules.mod_event_pusher.http]~n"
             "  handlers = [{pool_name = \"bench\", path = \"/notify\"}]~n",
             [Workers, QueueLen, Port]),
    ok = file:write_file(Path, Toml),
    Path.

new_acc() ->
    bench_xmpp:chat_acc(<<"alice">>, ?HOST).

run_hook(Acc) ->
    bench_xmpp:send_message(?HOST, Acc).

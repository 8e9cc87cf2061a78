%% One row of the RabbitMQ benchmark (scripts/bench_rabbit.sh), in its own
%% BEAM. The node boots the test host from TOML as MongooseIM boots (doc/compatibility.md
%% §1); callers, each a different user, run the `user_send_message' hook for
%% chat messages as mongoose_c2s runs it, and the event pusher behind the hook
%% publishes to exchange `chat_msg'. A queue bound to it with "#" is the
%% finish line: the row's time ends when the queue holds every message.
%%
%%   ours on|off W       mod_event_pusher_rabbit, confirms on/off, W connections
%%   mim on|off W        MongooseIM's way (bench_rabbit_mim): W amqp_client
%%                       workers; on = wait for the confirm after each publish
%%   mim pipelined W     the same hook, workers in confirm mode that do not wait
-module(bench_rabbit).

-export([main/1]).


-define(HOST, <<"localhost">>).
-define(EXCHANGE, <<"chat_msg">>).
-define(QUEUE, <<"ep_bench_queue">>).
-define(WARMUP_EVENTS, 2000).
-define(DELIVERY_TIMEOUT_MS, 120000).

-spec main([string()]) -> no_return().
main([Kind, Confirms, WorkersStr]) ->
    Workers = list_to_integer(WorkersStr),
    Events = bench_rabbit_lib:int_env("BENCH_EVENTS", 100000),
    Callers = bench_rabbit_lib:int_env("BENCH_CALLERS", 100),
    PerCaller = Events div Callers,
    Sent = Callers * PerCaller,
    Row = Kind ++ "_" ++ Confirms ++ "_" ++ WorkersStr,
    %% Dropped events and failures are logged at warning; info lines would
    %% only measure the logger.
    ok = logger:set_primary_config(level, warning),
    Status = try
                 run(Row, Kind, list_to_atom(Confirms), Workers, Callers, PerCaller, Sent)
             catch Class:Reason:Stacktrace ->
                     io:format("row ~s failed: ~p:~p~n~p~n", [Row, Class, Reason, Stacktrace]),
                     1
             end,
    halt(Status).

run(Row, Kind, Confirms, Workers, Callers, PerCaller, Sent) ->
    ok = ep_amqp:start(),
    Admin = ep_amqp:connect(),
    %% The exchange as mod_event_pusher_rabbit declares it by default.
    ok = ep_amqp:declare_exchange(Admin, ?EXCHANGE, <<"topic">>, false),
    _ = ep_amqp:declare_queue(Admin, ?QUEUE, []),
    ok = ep_amqp:bind(Admin, ?QUEUE, ?EXCHANGE, <<"#">>),
    _ = ep_amqp:purge(Admin, ?QUEUE),
    Toml = write_config(Kind, Confirms, Workers, Sent),
    try
        boot(Toml),
        Kind =:= "mim" andalso bench_rabbit_mim:start(?HOST, Workers, Confirms),
        Warmup = max(1, ?WARMUP_EVENTS div Callers),
        _ = bench_callers:run(Callers, Warmup, fun new_acc/1, fun run_hook/1),
        {ok, _} = bench_rabbit_lib:wait_queue(Admin, ?QUEUE, Callers * Warmup,
                                              ?DELIVERY_TIMEOUT_MS),
        _ = ep_amqp:purge(Admin, ?QUEUE),
        Threads0 = bench_callers:cpu_us_by_thread(),
        Cpu0 = bench_callers:cpu_us(),
        Run = bench_callers:run(Callers, PerCaller, fun new_acc/1, fun run_hook/1),
        CpuCallers = bench_callers:cpu_us(),
        Waited = bench_rabbit_lib:wait_queue(Admin, ?QUEUE, Sent, ?DELIVERY_TIMEOUT_MS),
        Cpu1 = bench_callers:cpu_us(),
        Threads1 = bench_callers:cpu_us_by_thread(),
        {End, Timeout} = case Waited of
                             {ok, T} -> {T, 0};
                             {timeout, _} -> {erlang:monotonic_time(), 1}
                         end,
        InQueue = ep_amqp:queue_length(Admin, ?QUEUE),
        Result = bench_callers:summarize(Sent, Run, End, Cpu1 - Cpu0),
        CallersSeconds = erlang:convert_time_unit(maps:get(done, Run) - maps:get(start, Run),
                                                  native, microsecond) / 1.0e6,
        Split = bench_callers:cpu_split(Threads0, Threads1, Sent),
        bench_callers:report(Row, (maps:merge(Result, Split))#{kind => Kind, confirms => Confirms,
                                             workers => Workers, in_queue => InQueue,
                                             timed_out => Timeout,
                                             callers_seconds => CallersSeconds,
                                             cpu_us_per_event_callers =>
                                                 (CpuCallers - Cpu0) / Sent,
                                             cpu_us_per_event_drain => (Cpu1 - CpuCallers) / Sent}
                                      #{dropped => dropped(Kind)}),
        Kind =:= "mim" andalso bench_rabbit_mim:stop(?HOST),
        shutdown(),
        _ = ep_amqp:purge(Admin, ?QUEUE),
        ep_amqp:close(Admin),
        0
    after
        file:delete(Toml)
    end.

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
    _ = mongoose_wpool:stop(),
    mongoose_config:erase_opts(),
    ejabberd_sup:stop().

%% Both kinds configure [outgoing_pools.rabbit.event_pusher], so that the
%% wpool's instrumentation events exist for either backend to emit. Ours has
%% a queue that holds every event (this measures delivery, not overload);
%% MongooseIM's row runs mod_event_pusher with no backend of ours and its
%% own handler (bench_rabbit_mim).
write_config(Kind, Confirms, Workers, Events) ->
    QueueLen = (Events + Workers - 1) div Workers + ?WARMUP_EVENTS,
    Backend = case Kind of
                  "ours" -> "[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n";
                  "mim" -> "[modules.mod_event_pusher]\n"
              end,
    Toml = io_lib:format(
             "[general]~n"
             "  hosts = [\"localhost\"]~n"
             "  default_server_domain = \"localhost\"~n~n"
             "[outgoing_pools.rabbit.event_pusher]~n"
             "  workers = ~b~n"
             "  max_worker_queue_len = ~b~n"
             "  [outgoing_pools.rabbit.event_pusher.connection]~n"
             "    host = \"127.0.0.1\"~n"
             "    confirms_enabled = ~s~n~n"
             "~s",
             [Workers, QueueLen, Confirms =/= off, Backend]),
    Path = filename:join(os:getenv("TMPDIR", "/tmp"),
                         "bench_rabbit_" ++ os:getpid() ++ ".toml"),
    ok = file:write_file(Path, Toml),
    Path.

%% Caller I is user I: routing keys differ between callers, as between users.
new_acc(I) ->
    bench_xmpp:chat_acc(<<"user", (integer_to_binary(I))/binary>>, ?HOST).

run_hook(Acc) ->
    bench_xmpp:send_message(?HOST, Acc).

%% What our pool gave up (0 expected); MongooseIM's workers count nothing.
dropped("ours") ->
    case mongoose_event_pusher_pool_registry:lookup(rabbit, ?HOST, event_pusher) of
        undefined -> 0;
        Pool ->
            Stats = mongoose_event_pusher_nif:pool_stats(Pool),
            lists:sum([V || {K, V} <- maps:to_list(Stats),
                            lists:prefix("dropped", atom_to_list(K))])
    end;
dropped(_) ->
    0.

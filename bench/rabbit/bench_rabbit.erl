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
%%   spoolnever|spoolinterval on|off W
%%                       ours with a disk spool (fsync never, or every 1000 ms)
%%   outage on|off W     ours with a spool (fsync never): the broker's app is
%%                       stopped, BENCH_OUTAGE_EVENTS (1,000,000) are submitted,
%%                       then it starts again; reports the node's RSS before,
%%                       after the submits and at peak, and the time until the
%%                       queue holds every message after the broker returns
-module(bench_rabbit).

-export([main/1]).

-define(EXCHANGE, <<"chat_msg">>).
-define(QUEUE, <<"ep_bench_queue">>).
-define(WARMUP_EVENTS, 2000).
-define(DELIVERY_TIMEOUT_MS, 120000).

-spec main([string()]) -> no_return().
main([Kind, Confirms, WorkersStr]) ->
    Row = Kind ++ "_" ++ Confirms ++ "_" ++ WorkersStr,
    bench_host:main(Row, fun() ->
                                 row(Row, Kind, list_to_atom(Confirms),
                                     list_to_integer(WorkersStr))
                         end).

row(Row, "outage", Confirms, Workers) ->
    outage(Row, Confirms, Workers);
row(Row, Kind, Confirms, Workers) ->
    Events = bench_host:int_env("BENCH_EVENTS", 100000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    PerCaller = Events div Callers,
    Sent = Callers * PerCaller,
    Host = bench_host:host_type(),
    ok = ep_amqp:start(),
    Admin = ep_amqp:connect(),
    %% The exchange as mod_event_pusher_rabbit declares it by default.
    ok = ep_amqp:declare_exchange(Admin, ?EXCHANGE, <<"topic">>, false),
    _ = ep_amqp:declare_queue(Admin, ?QUEUE, []),
    ok = ep_amqp:bind(Admin, ?QUEUE, ?EXCHANGE, <<"#">>),
    _ = ep_amqp:purge(Admin, ?QUEUE),
    ok = bench_host:boot(toml(Kind, Confirms, Workers, Sent)),
    Kind =:= "mim" andalso bench_rabbit_mim:start(Host, Workers, Confirms),
    %% Caller I is user I: routing keys differ between callers, as between users.
    NewAcc = fun(I) -> bench_xmpp:chat_acc(<<"user", (integer_to_binary(I))/binary>>, Host) end,
    RunHook = fun(Acc) -> bench_xmpp:send_message(Host, Acc) end,
    Warmup = max(1, ?WARMUP_EVENTS div Callers),
    _ = bench_callers:run(Callers, Warmup, NewAcc, RunHook),
    {ok, _} = wait_queue(Admin, Callers * Warmup),
    _ = ep_amqp:purge(Admin, ?QUEUE),
    %% What the pool refused at submit (overloaded) never arrives: the row
    %% waits for the rest, and reports the refusals.
    {Waited, Result} = bench_callers:measure(Callers, PerCaller, NewAcc, RunHook,
                                             fun() -> wait_queue(Admin, Sent - dropped(Kind, Host)) end),
    InQueue = ep_amqp:queue_length(Admin, ?QUEUE),
    Timeout = case Waited of
                  {ok, _} -> 0;
                  {timeout, _} -> 1
              end,
    bench_callers:report(Row, Result#{kind => Kind, confirms => Confirms, workers => Workers,
                                      in_queue => InQueue, timed_out => Timeout,
                                      dropped => dropped(Kind, Host)}),
    Kind =:= "mim" andalso bench_rabbit_mim:stop(Host),
    bench_host:shutdown(),
    _ = ep_amqp:purge(Admin, ?QUEUE),
    ep_amqp:close(Admin).

%% Both kinds configure [outgoing_pools.rabbit.event_pusher], so that the
%% wpool's instrumentation events exist for either backend to emit. Ours has
%% a queue that holds every event (this measures delivery, not overload);
%% MongooseIM's row runs mod_event_pusher with no backend of ours and its
%% own handler (bench_rabbit_mim).
toml(Kind, Confirms, Workers, Events) ->
    QueueLen = (Events + Workers - 1) div Workers + ?WARMUP_EVENTS,
    Backend = case Kind of
                  "ours" -> "[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n";
                  "spoolnever" -> ["[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n",
                                   spool_toml(Kind, "never")];
                  "spoolinterval" -> ["[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n",
                                      spool_toml(Kind, "interval")];
                  "mim" -> "[modules.mod_event_pusher]\n"
              end,
    io_lib:format("[outgoing_pools.rabbit.event_pusher]~n"
                  "  workers = ~b~n"
                  "  max_worker_queue_len = ~b~n"
                  "  [outgoing_pools.rabbit.event_pusher.connection]~n"
                  "    host = \"127.0.0.1\"~n"
                  "    confirms_enabled = ~s~n~n"
                  "~s",
                  [Workers, QueueLen, Confirms =/= off, Backend]).

%% A spool in a fresh directory of this run.
spool_toml(Kind, Fsync) ->
    Dir = filename:join(["/tmp", "ep-bench-spool", Kind ++ "-" ++ os:getpid()]),
    _ = file:del_dir_r(Dir),
    io_lib:format("[modules.mod_event_pusher.rabbit.spool]~n"
                  "  directory = \"~s\"~n"
                  "  max_bytes = 8000000000~n"
                  "  fsync = \"~s\"~n", [Dir, Fsync]).

-define(OUTAGE_EXCHANGE, <<"ep_bench_outage_chat">>).

%% The outage row: a durable exchange and queue (they outlive stop_app), a
%% queue of 65,536 in memory, the rest waits in the spool.
outage(Row, Confirms, Workers) ->
    Events = bench_host:int_env("BENCH_OUTAGE_EVENTS", 1000000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    PerCaller = Events div Callers,
    Host = bench_host:host_type(),
    ok = ep_amqp:start(),
    Admin = ep_amqp:connect(),
    ok = ep_amqp:declare_exchange(Admin, ?OUTAGE_EXCHANGE, <<"topic">>, true),
    _ = ep_amqp:declare_queue(Admin, ?QUEUE, []),
    ok = ep_amqp:bind(Admin, ?QUEUE, ?OUTAGE_EXCHANGE, <<"#">>),
    _ = ep_amqp:purge(Admin, ?QUEUE),
    ok = ep_amqp:close(Admin),
    Toml = io_lib:format("[outgoing_pools.rabbit.event_pusher]~n"
                         "  workers = ~b~n"
                         "  max_worker_queue_len = ~b~n"
                         "  [outgoing_pools.rabbit.event_pusher.connection]~n"
                         "    host = \"127.0.0.1\"~n"
                         "    confirms_enabled = ~s~n"
                         "    reconnect.delay = 200~n~n"
                         "[modules.mod_event_pusher.rabbit.chat_msg_exchange]~n"
                         "  name = \"~s\"~n  durable = true~n~s",
                         [Workers, 65536 div Workers, Confirms =/= off, ?OUTAGE_EXCHANGE,
                          spool_toml("outage", "never")]),
    ok = bench_host:boot(Toml),
    NewAcc = fun(I) -> bench_xmpp:chat_acc(<<"user", (integer_to_binary(I))/binary>>, Host) end,
    RunHook = fun(Acc) -> bench_xmpp:send_message(Host, Acc) end,
    RssBefore = proc_status_kb("VmRSS"),
    BeamBefore = erlang:memory(total),
    ok = ep_amqp:stop_app(),
    {{ok, _}, Result} = bench_callers:measure(Callers, PerCaller, NewAcc, RunHook,
                                              fun() -> wait_spooled(Host) end),
    RssSubmitted = proc_status_kb("VmRSS"),
    BeamSubmitted = erlang:memory(total),
    BeamSplit = beam_split(),
    #{spool_bytes := SpoolBytes, queued := Queued, in_flight := InFlight} =
        mongoose_event_pusher_nif:pool_stats(
          mongoose_event_pusher_pool_registry:lookup(rabbit, Host, event_pusher)),
    Back = erlang:monotonic_time(millisecond),
    ok = ep_amqp:start_app(60000),
    Consumer = ep_amqp:connect(),
    %% What the pool accepted (a submit the spool's writer could not take in
    %% time was refused as overloaded, and is counted in `dropped').
    Accepted = maps:get(submitted, mongoose_event_pusher_nif:pool_stats(
                                     mongoose_event_pusher_pool_registry:lookup(rabbit, Host,
                                                                                event_pusher))),
    Waited = poll_queue(Consumer, Accepted, erlang:monotonic_time(millisecond) + 600000),
    DeliverMs = erlang:monotonic_time(millisecond) - Back,
    InQueue = ep_amqp:queue_length(Consumer, ?QUEUE),
    bench_callers:report(Row, Result#{kind => "outage", confirms => Confirms, workers => Workers,
                                      in_queue => InQueue,
                                      timed_out => case Waited of {ok, _} -> 0; _ -> 1 end,
                                      dropped => dropped("ours", Host),
                                      rss_before_mb => RssBefore div 1024,
                                      rss_submitted_mb => RssSubmitted div 1024,
                                      rss_peak_mb => proc_status_kb("VmHWM") div 1024,
                                      beam_before_mb => BeamBefore div (1024 * 1024),
                                      beam_submitted_mb => BeamSubmitted div (1024 * 1024),
                                      beam_split => BeamSplit,
                                      spool_mb => SpoolBytes div (1024 * 1024),
                                      in_memory_jobs => Queued + InFlight,
                                      deliver_s => DeliverMs / 1000}),
    bench_host:shutdown(),
    _ = ep_amqp:purge(Consumer, ?QUEUE),
    ep_amqp:close(Consumer).

%% Where the BEAM's memory is, in MB, as one word for the RESULT line:
%% erlang:memory/0's parts, then the three processes holding the most, by
%% initial call (the bench's own callers and latency list are among them).
beam_split() ->
    MB = fun(B) -> B div (1024 * 1024) end,
    Parts = [io_lib:format("~s:~b", [K, MB(V)]) || {K, V} <- erlang:memory(),
                                                   lists:member(K, [processes, binary, ets, code, system])],
    All = lists:reverse(lists:sort(
            [{M, P} || P <- processes(), {memory, M} <- [erlang:process_info(P, memory)]])),
    Top = [io_lib:format("~w:~b", [initial_call(P), MB(M)]) || {M, P} <- lists:sublist(All, 3)],
    Sum = io_lib:format("|~b_processes_hold:~b", [length(All), MB(lists:sum([M || {M, _} <- All]))]),
    lists:flatten(lists:join(",", Parts) ++ Sum ++ "|top:" ++ lists:join(",", Top)).

initial_call(P) ->
    case erlang:process_info(P, [dictionary, initial_call]) of
        [{dictionary, D}, {initial_call, I}] -> proplists:get_value('$initial_call', D, I);
        _ -> gone
    end.

%% Every event the pool accepted is in the spool (written).
wait_spooled(Host) ->
    Pool = mongoose_event_pusher_pool_registry:lookup(rabbit, Host, event_pusher),
    wait_spooled_until(Pool, erlang:monotonic_time(millisecond) + ?DELIVERY_TIMEOUT_MS).

wait_spooled_until(Pool, Deadline) ->
    #{spool_events := Events, submitted := Accepted} = mongoose_event_pusher_nif:pool_stats(Pool),
    case Events >= Accepted orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> {ok, erlang:monotonic_time()};
        false -> receive after 2 -> ok end, wait_spooled_until(Pool, Deadline)
    end.

%% A line of /proc/self/status in kB (the BEAM with the NIF's threads).
proc_status_kb(Key) ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Bin, [Key, ":\\s+([0-9]+) kB"], [{capture, all_but_first, binary}]),
    binary_to_integer(Kb).

%% The finish line: polls the broker until the queue holds Expected messages.
%% Returns the native monotonic time it saw them, or {timeout, Count}.
-spec wait_queue(ep_amqp:conn(), non_neg_integer()) -> bench_callers:waited().
wait_queue(Conn, Expected) ->
    poll_queue(Conn, Expected, erlang:monotonic_time(millisecond) + ?DELIVERY_TIMEOUT_MS).

poll_queue(Conn, Expected, Deadline) ->
    Count = ep_amqp:queue_length(Conn, ?QUEUE),
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
                    poll_queue(Conn, Expected, Deadline)
            end
    end.

%% What our pool gave up (0 expected); MongooseIM's workers count nothing.
dropped(Kind, Host) when Kind =:= "ours"; Kind =:= "spoolnever"; Kind =:= "spoolinterval" ->
    case mongoose_event_pusher_pool_registry:lookup(rabbit, Host, event_pusher) of
        undefined -> 0;
        Pool ->
            Stats = mongoose_event_pusher_nif:pool_stats(Pool),
            lists:sum([V || {K, V} <- maps:to_list(Stats),
                            lists:prefix("dropped", atom_to_list(K))])
    end;
dropped(_, _Host) ->
    0.

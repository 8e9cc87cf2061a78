%% @doc The BEAM rows of the SNS benchmark (scripts/bench_sns.sh).
%%
%% `erl -run bench_sns main MODE ENDPOINT TOPIC EVENTS CALLERS POOL_SIZE'
%% boots the test host as MongooseIM boots and runs the `user_send_message'
%% hook (a chat message with a body, as a user's c2s runs it): first from one
%% process, 1000 times, each call timed (the caller's cost, p50/p99), then
%% from CALLERS processes, EVENTS times in all (the throughput). MODE:
%%   ours_batching, ours_single: mod_event_pusher_sns with publish_batching
%%     true / false and pool_size POOL_SIZE;
%%   mim: MongooseIM's way (bench_sns_mim): the hook casts to POOL_SIZE
%%     workers that publish one synchronous request per notification.
%% The throughput clock stops when SNS accepted every notification; the CPU
%% time is this OS process's (schedulers and Rust threads) over that phase.
%% Prints one line:
%% `RESULT row=MODE events=.. publishes_per_s=.. requests=.. requests_per_s=..
%%  call_p50_us=.. call_p99_us=.. cpu_us_per_event=.. dropped=..'.
-module(bench_sns).

-export([main/1]).

-define(WARMUP_EVENTS, 200).
%% Events of the one-caller phase that measures the cost of a call.
-define(LATENCY_EVENTS, 1000).
-define(DEADLINE_MS, 120000).
-define(POLL_MS, 2).
-define(REGION, "us-east-1").
-define(ACCOUNT, "123456789012").
-define(BODY, <<"Hello from the benchmark">>).

-spec main([string()]) -> no_return().
main([Mode, Endpoint, Topic, Events, Callers, PoolSize]) ->
    bench_host:main(Mode, fun() ->
                                  run(list_to_atom(Mode), Endpoint, Topic, list_to_integer(Events),
                                      list_to_integer(Callers), list_to_integer(PoolSize))
                          end).

run(Mode, Endpoint, Topic, Events, Callers, PoolSize) ->
    HostType = bench_host:host_type(),
    ok = bench_host:boot(toml(Mode, Endpoint, Topic, PoolSize)),
    TopicArn = "arn:aws:sns:" ++ ?REGION ++ ":" ++ ?ACCOUNT ++ ":" ++ Topic,
    case Mode of
        mim -> ok = bench_sns_mim:start(HostType, Endpoint, TopicArn, PoolSize);
        _ -> ok
    end,
    Messages = messages(),
    _ = call_hooks(Messages, ?WARMUP_EVENTS),
    {Warm, _} = wait_finished(Mode, HostType, ?WARMUP_EVENTS),
    %% What one user process pays per event, without other callers queued
    %% on the schedulers: one caller, each call timed.
    Costs = lists:sort(call_hooks(Messages, ?LATENCY_EVENTS)),
    {Before, DroppedBefore} = wait_finished(Mode, HostType, Warm + ?LATENCY_EVENTS),
    %% Throughput: CALLERS processes, the clock stops when SNS accepted all.
    BeforeRequests = requests(Mode, HostType),
    Cpu0 = bench_callers:cpu_us(),
    T0 = erlang:monotonic_time(microsecond),
    _ = run_callers(Messages, Events, Callers),
    {Done, Dropped} = wait_finished(Mode, HostType, Before + Events),
    Elapsed = (erlang:monotonic_time(microsecond) - T0) / 1.0e6,
    Cpu = bench_callers:cpu_us() - Cpu0,
    Requests = requests(Mode, HostType) - BeforeRequests,
    io:format("RESULT row=~s events=~b publishes_per_s=~b requests=~b requests_per_s=~b "
              "call_p50_us=~.2f call_p99_us=~.2f cpu_us_per_event=~.1f dropped=~b~n",
              [Mode, Events, round((Done - Before) / Elapsed), Requests, round(Requests / Elapsed),
               bench_callers:percentile(Costs, 0.50) / 1000,
               bench_callers:percentile(Costs, 0.99) / 1000, Cpu / Events,
               Dropped - DroppedBefore]),
    case Mode of
        mim -> bench_sns_mim:stop();
        _ -> ok
    end,
    ok = bench_host:shutdown().

toml(mim, _Endpoint, _Topic, _PoolSize) ->
    %% The event pusher without a backend of ours: bench_sns_mim handles the hook.
    "[modules.mod_event_pusher]\n";
toml(Mode, Endpoint, Topic, PoolSize) ->
    ["[modules.mod_event_pusher.sns]\n",
     "  pm_messages_topic = \"", Topic, "\"\n",
     "  sns_host = \"", Endpoint, "\"\n",
     "  region = \"", ?REGION, "\"\n",
     "  access_key_id = \"bench\"\n",
     "  secret_access_key = \"bench-secret\"\n",
     "  account_id = \"", ?ACCOUNT, "\"\n",
     "  pool_size = ", integer_to_list(PoolSize), "\n",
     "  publish_batching = ", atom_to_list(Mode =:= ours_batching), "\n"].

%% A chat message from alice to bob, as her client sends it.
messages() ->
    Alice = ep_test_host:jid(<<"alice@localhost/phone">>),
    Bob = ep_test_host:jid(<<"bob@localhost/laptop">>),
    {Alice, ep_test_host:message(Bob, <<"chat">>, ?BODY)}.

%% Runs the hook N times; returns each call's time in ns.
call_hooks({From, Msg}, N) ->
    [begin
         T = erlang:monotonic_time(nanosecond),
         {ok, _} = ep_test_host:user_send_message(From, Msg),
         erlang:monotonic_time(nanosecond) - T
     end || _ <- lists:seq(1, N)].

run_callers(Messages, Events, Callers) ->
    Self = self(),
    Shares = [Events div Callers + case I =< Events rem Callers of true -> 1; false -> 0 end
              || I <- lists:seq(1, Callers)],
    Pids = [spawn_link(fun() -> Self ! {costs, self(), call_hooks(Messages, Share)} end)
            || Share <- Shares],
    lists:append([receive {costs, Pid, Costs} -> Costs end || Pid <- Pids]).

%% {Finished, Dropped}: notifications SNS accepted (plus those given up).
wait_finished(Mode, HostType, Expected) ->
    Deadline = erlang:monotonic_time(millisecond) + ?DEADLINE_MS,
    wait_finished(Mode, HostType, Expected, Deadline).

wait_finished(Mode, HostType, Expected, Deadline) ->
    {Published, Dropped} = progress(Mode, HostType),
    case Published + Dropped >= Expected of
        true ->
            {Published + Dropped, Dropped};
        false ->
            erlang:monotonic_time(millisecond) < Deadline
                orelse error({unfinished, Published, Dropped, Expected}),
            receive after ?POLL_MS -> ok end,
            wait_finished(Mode, HostType, Expected, Deadline)
    end.

progress(mim, _HostType) ->
    {bench_sns_mim:done(), 0};
progress(_Ours, HostType) ->
    {ok, #{published := P, dropped_retries_exhausted := D1, dropped_closed := D2,
           dropped_overloaded := D3}} = mod_event_pusher_sns:stats(HostType),
    {P, D1 + D2 + D3}.

requests(mim, _HostType) ->
    bench_sns_mim:requests();
requests(_Ours, HostType) ->
    {ok, #{requests := R}} = mod_event_pusher_sns:stats(HostType),
    R.

%% The MongoosePush benchmark (a benchmark, not a test): notifications/s and
%% the caller's cost per notification through mod_push_service_mongoosepush,
%% against the bench sink standing in for MongoosePush (200 to every POST).
%%
%% Both rows run the `push_notifications' hook in 100 caller processes with
%% the same notification and options, so the same JSON reaches the same sink:
%%   sync: Acc `ok', the caller waits for MongoosePush's answer, which is how
%%         MongooseIM sends every notification (a synchronous POST in the
%%         user's process);
%%   ours: Acc a mongoose_acc, as the event pusher calls it: queued in Rust,
%%         the hook returns at once.
-module(bench_mongoosepush).

-export([main/1]).

-include("jlib.hrl").

-define(WARMUP, 2000).
-define(SINK_DEADLINE_MS, 60000).

%% Args: [SinkPort]. BENCH_EVENTS (default 20000), BENCH_CALLERS (100),
%% BENCH_WORKERS (100: MongooseIM's max_http_connections default).
-spec main([string()]) -> no_return().
main([PortStr]) ->
    bench_host:main(mongoosepush, fun() -> rows(list_to_integer(PortStr)) end).

rows(Port) ->
    Events = bench_host:int_env("BENCH_EVENTS", 20000),
    Callers = bench_host:int_env("BENCH_CALLERS", 100),
    Workers = bench_host:int_env("BENCH_WORKERS", 100),
    PerCaller = max(1, Events div Callers),
    ok = bench_host:boot(toml(Port, Workers, Callers * PerCaller)),
    Async = new_acc(bench_host:host_type()),
    Rows = [{sync, ok}, {ours, Async}],
    %% Warm-up: connections opened, code loaded.
    _ = run(Port, Callers, max(1, ?WARMUP div Callers), Async),
    [bench_callers:report(Row, run(Port, Callers, PerCaller, Acc)) || {Row, Acc} <- Rows],
    bench_host:shutdown().

run(Port, Callers, PerCaller, Acc) ->
    Sent = Callers * PerCaller,
    Host = bench_host:host_type(),
    _ = bench_sink:reset(Port),
    Form = #{<<"message-count">> => <<"1">>,
             <<"last-message-sender">> => <<"alice@localhost">>,
             <<"last-message-body">> => <<"Hello from the benchmark">>},
    Options = #{<<"service">> => <<"apns">>, <<"device_id">> => <<"bench-device">>},
    Call = fun(A) -> mongoose_hooks:push_notifications(Host, A, [Form], Options) end,
    Cpu0 = bench_callers:cpu_us(),
    Run = bench_callers:run(Callers, PerCaller, fun(_) -> Acc end, Call),
    End = case bench_sink:wait_for(Port, Sent, ?SINK_DEADLINE_MS) of
              {ok, T} -> T;
              {timeout, Got} -> error({not_delivered, #{sent => Sent, sink_count => Got}})
          end,
    Cpu1 = bench_callers:cpu_us(),
    {Counted, _Bytes} = bench_sink:count(Port),
    (bench_callers:summarize(Sent, Run, End, Cpu1 - Cpu0))#{sink_count => Counted}.

%% The queue holds every notification at once: the `ours' callers submit
%% far faster than one local sink drains, and this measures delivery.
toml(Port, Workers, Events) ->
    io_lib:format("[outgoing_pools.http.mongoose_push_http]~n"
                  "  workers = ~b~n"
                  "  max_worker_queue_len = ~b~n"
                  "  connection.host = \"http://127.0.0.1:~b\"~n"
                  "  connection.path_prefix = \"/\"~n~n"
                  "[modules.mod_push_service_mongoosepush]~n"
                  "  pool_name = \"mongoose_push_http\"~n",
                  [Workers, (Events + Workers - 1) div Workers + 1, Port]).

%% What the push backend passes for a virtual pubsub host: the recipient's
%% message accumulator with the service's JID.
new_acc(Host) ->
    From = jid:make(<<"alice">>, Host, <<"bench">>),
    To = jid:make(<<"bob">>, Host, <<>>),
    El = #xmlel{name = <<"message">>, attrs = #{<<"type">> => <<"chat">>},
                children = [#xmlel{name = <<"body">>,
                                   children = [#xmlcdata{content = <<"Hello">>}]}]},
    Acc = mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                           file => ?FILE, line => ?LINE},
                             lserver => Host, host_type => Host, element => El,
                             from_jid => From, to_jid => To}),
    mongoose_acc:set(push_notifications, pubsub_jid,
                     jid:make(<<>>, <<"virtual.", Host/binary>>, <<>>), Acc).

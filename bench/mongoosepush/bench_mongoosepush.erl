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

-define(HOST, <<"localhost">>).
-define(WARMUP, 2000).
-define(SINK_DEADLINE_MS, 60000).

%% Args: [SinkPort]. BENCH_EVENTS (default 20000), BENCH_CALLERS (100),
%% BENCH_WORKERS (100: MongooseIM's max_http_connections default).
-spec main([string()]) -> no_return().
main([PortStr]) ->
    Port = list_to_integer(PortStr),
    Events = bench_http_lib:int_env("BENCH_EVENTS", 20000),
    Callers = bench_http_lib:int_env("BENCH_CALLERS", 100),
    Workers = bench_http_lib:int_env("BENCH_WORKERS", 100),
    PerCaller = max(1, Events div Callers),
    ok = logger:set_primary_config(level, warning),
    Toml = write_config(Port, Workers, Callers * PerCaller),
    try
        boot(Toml),
        Async = new_acc(),
        Rows = [{sync, ok}, {ours, Async}],
        %% Warm-up: connections opened, code loaded.
        _ = run(Port, Callers, max(1, ?WARMUP div Callers), Async),
        [report(Row, run(Port, Callers, PerCaller, Acc)) || {Row, Acc} <- Rows],
        ok = mongoose_modules:stop(),
        mongoose_config:erase_opts()
    after
        file:delete(Toml)
    end,
    halt(0).

run(Port, Callers, PerCaller, Acc) ->
    Sent = Callers * PerCaller,
    _ = bench_http_lib:sink_reset(Port),
    Form = #{<<"message-count">> => <<"1">>,
             <<"last-message-sender">> => <<"alice@localhost">>,
             <<"last-message-body">> => <<"Hello from the benchmark">>},
    Options = #{<<"service">> => <<"apns">>, <<"device_id">> => <<"bench-device">>},
    Call = fun(A) -> mongoose_hooks:push_notifications(?HOST, A, [Form], Options) end,
    Cpu0 = bench_callers:cpu_us(),
    Run = bench_callers:run(Callers, PerCaller, fun(_) -> Acc end, Call),
    End = case bench_http_lib:wait_for_sink(Port, Sent, ?SINK_DEADLINE_MS) of
              {ok, T} -> T;
              {timeout, Got} -> error({not_delivered, #{sent => Sent, sink_count => Got}})
          end,
    Cpu1 = bench_callers:cpu_us(),
    {Counted, _Bytes} = bench_http_lib:sink_count(Port),
    (bench_callers:summarize(Sent, Run, End, Cpu1 - Cpu0))#{sink_count => Counted}.

report(Row, Result) ->
    bench_callers:report(Row, Result).

boot(Toml) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    Opts = mongoose_config_parser:parse_file(Toml),
    ok = mongoose_config:set_opts(maps:from_list(Opts)),
    _ = mongoose_wpool:start_configured_pools(),
    ok = mongoose_modules:start(),
    _ = gen_hook:reload_hooks(),
    ok.

%% The queue holds every notification at once: the `ours' callers submit
%% far faster than one local sink drains, and this measures delivery.
write_config(Port, Workers, Events) ->
    Path = filename:join(os:getenv("TMPDIR", "/tmp"),
                         "bench_mongoosepush_" ++ os:getpid() ++ ".toml"),
    Toml = io_lib:format(
             "[general]~n"
             "  hosts = [\"localhost\"]~n"
             "  default_server_domain = \"localhost\"~n~n"
             "[outgoing_pools.http.mongoose_push_http]~n"
             "  workers = ~b~n"
             "  max_worker_queue_len = ~b~n"
             "  connection.host = \"http://127.0.0.1:~b\"~n"
             "  connection.path_prefix = \"/\"~n~n"
             "[modules.mod_push_service_mongoosepush]~n"
             "  pool_name = \"mongoose_push_http\"~n",
             [Workers, (Events + Workers - 1) div Workers + 1, Port]),
    ok = file:write_file(Path, Toml),
    Path.

%% What the push backend passes for a virtual pubsub host: the recipient's
%% message accumulator with the service's JID.
new_acc() ->
    From = jid:make(<<"alice">>, ?HOST, <<"bench">>),
    To = jid:make(<<"bob">>, ?HOST, <<>>),
    El = #xmlel{name = <<"message">>, attrs = #{<<"type">> => <<"chat">>},
                children = [#xmlel{name = <<"body">>,
                                   children = [#xmlcdata{content = <<"Hello">>}]}]},
    Acc = mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                           file => ?FILE, line => ?LINE},
                             lserver => ?HOST, host_type => ?HOST, element => El,
                             from_jid => From, to_jid => To}),
    mongoose_acc:set(push_notifications, pubsub_jid,
                     jid:make(<<>>, <<"virtual.localhost">>, <<>>), Acc).

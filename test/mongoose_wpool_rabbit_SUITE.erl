%% @doc The product's `mongoose_wpool_rabbit': `[outgoing_pools.rabbit.*]'
%% started through MongooseIM's `mongoose_wpool' makes exactly one pool, the
%% Rust pool the rabbit backend uses, and MongooseIM's pool API starts and
%% stops it. Counted on the real broker (its connections on a vhost of our
%% own) and read by a real consumer.
-module(mongoose_wpool_rabbit_SUITE).

-include("ep_suite.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([entry_starts_one_pool_of_workers_connections/1,
         module_and_entry_share_one_pool/1,
         stop_and_start_through_mongoose_wpool/1,
         broker_down_at_start_connects_and_delivers_once_up/1,
         no_password_in_child_specs_or_logs/1]).

-define(VHOST, <<"ep_wpool_rabbit">>).
-define(WORKERS, 3).
-define(PASSWORD, "wpool-secret-guest").
-define(POOL, {rabbit, global, event_pusher}).
-define(WAIT_MS, 15000).

all() ->
    [entry_starts_one_pool_of_workers_connections,
     module_and_entry_share_one_pool,
     stop_and_start_through_mongoose_wpool,
     broker_down_at_start_connects_and_delivers_once_up,
     no_password_in_child_specs_or_logs].

init_per_suite(Config) ->
    ok = ep_amqp:wait_up(60000),
    ok = ep_amqp:add_vhost(?VHOST),
    Config.

end_per_suite(_Config) ->
    ok = ep_amqp:delete_vhost(?VHOST).

init_per_testcase(_Case, Config) ->
    ok = ep_amqp:wait_up(60000),
    Config.

end_per_testcase(_Case, _Config) ->
    ep_test_host:shutdown(),
    %% A consumer a failed case left open would count as a connection.
    [ep_amqp:close(Conn) || Conn <- [erase(consumer)], Conn =/= undefined],
    %% Whatever a case left, the broker runs for the next one.
    _ = ep_amqp:start_app(60000),
    ok.

%%====================================================================
%% Cases
%%====================================================================

entry_starts_one_pool_of_workers_connections(doc) ->
    ["The entry (workers = 3) starts one pool: MongooseIM's API lists it, our Rust pool runs, "
     "and the broker sees exactly 3 connections (no amqp_client workers beside it)"];
entry_starts_one_pool_of_workers_connections(_Config) ->
    ok = ep_test_host:boot(toml(#{module => false})),
    ?assertEqual([?POOL], [P || P = {rabbit, _, _} <- mongoose_wpool:get_pools()]),
    ?assertNotEqual(undefined, mongoose_event_pusher_pool_owner:get_ref(?POOL)),
    wait_connections(?WORKERS).

module_and_entry_share_one_pool(doc) ->
    ["With the rabbit backend on, the broker still sees `workers' connections, and a chat "
     "published by the module arrives"];
module_and_entry_share_one_pool(_Config) ->
    ok = ep_test_host:boot(toml(#{module => true})),
    wait_connections(?WORKERS),
    Conn = consumer(),
    send_chat(<<"shared pool">>),
    [#{payload := Body}] = ep_amqp:recv_until(fun(_) -> true end, ?WAIT_MS),
    ?assertMatch(#{<<"message">> := <<"shared pool">>}, jiffy:decode(Body, [return_maps])),
    %% The pool's and the consumer's.
    ?assertEqual(?WORKERS + 1, ep_amqp:connections_on(?VHOST)),
    ep_amqp:close(Conn).

stop_and_start_through_mongoose_wpool(doc) ->
    ["mongoose_wpool:stop/3 closes the pool's connections when no module uses it; "
     "mongoose_wpool:start/5 opens them again"];
stop_and_start_through_mongoose_wpool(_Config) ->
    ok = ep_test_host:boot(toml(#{module => false})),
    wait_connections(?WORKERS),
    [Entry] = [E || E = #{type := rabbit} <- mongoose_config:get_opt(outgoing_pools)],
    ok = mongoose_wpool:stop(rabbit, global, event_pusher),
    ?assertEqual([], [P || P = {rabbit, _, _} <- mongoose_wpool:get_pools()]),
    wait_connections(0),
    ?assertEqual(undefined, mongoose_event_pusher_pool_owner:get_ref(?POOL)),
    #{opts := Opts, conn_opts := ConnOpts} = Entry,
    {ok, _} = mongoose_wpool:start(rabbit, global, event_pusher, maps:to_list(Opts), ConnOpts),
    wait_connections(?WORKERS),
    ?assertEqual([?POOL], [P || P = {rabbit, _, _} <- mongoose_wpool:get_pools()]).

broker_down_at_start_connects_and_delivers_once_up(doc) ->
    ["With the broker's app stopped, the pool starts; once the broker is back it connects "
     "and a message published then arrives"];
broker_down_at_start_connects_and_delivers_once_up(_Config) ->
    ok = ep_amqp:stop_app(),
    ok = ep_test_host:boot(toml(#{module => false})),
    ?assertEqual([?POOL], [P || P = {rabbit, _, _} <- mongoose_wpool:get_pools()]),
    ?assertNotEqual(undefined, mongoose_event_pusher_pool_owner:get_ref(?POOL)),
    ok = ep_amqp:start_app(60000),
    wait_connections(?WORKERS),
    %% The backend starts on the pool that connected in the background.
    ok = mongoose_config:set_opts(maps:from_list(parse(toml(#{module => true})))),
    ok = mongoose_modules:start(),
    _ = gen_hook:reload_hooks(),
    Conn = consumer(),
    send_chat(<<"after the outage">>),
    [#{payload := Body}] = ep_amqp:recv_until(fun(_) -> true end, ?WAIT_MS),
    ?assertMatch(#{<<"message">> := <<"after the outage">>}, jiffy:decode(Body, [return_maps])),
    ep_amqp:close(Conn).

no_password_in_child_specs_or_logs(doc) ->
    ["Neither a supervisor's child specs nor the log (pool start, stop, a failed "
     "connection) show the broker password"];
no_password_in_child_specs_or_logs(_Config) ->
    ok = ep_log_capture:start(),
    %% A wrong password: the broker refuses it and the pool logs the failure.
    ok = ep_test_host:boot(toml(#{module => false, password => ?PASSWORD})),
    Failed = ep_log_capture:wait_for(rabbit_connection_failed, ?WAIT_MS),
    PoolSup = mongoose_wpool:make_pool_name(rabbit, global, event_pusher),
    States = [sys:get_state(S) || S <- [mongoose_event_pusher_sup, PoolSup]],
    ok = mongoose_wpool:stop(rabbit, global, event_pusher),
    ok = ep_log_capture:stop(),
    Logged = drain_reports([]),
    Text = iolist_to_binary(io_lib:format("~p~n~p~n~p", [Failed, States, Logged])),
    ct:log("~ts", [Text]),
    ?assertEqual(nomatch, binary:match(Text, <<?PASSWORD>>)).

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

toml(#{module := Module} = Opts) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.rabbit.event_pusher]\n",
     "  workers = ", integer_to_list(?WORKERS), "\n",
     "[outgoing_pools.rabbit.event_pusher.connection]\n",
     "  host = \"127.0.0.1\"\n",
     "  virtual_host = \"", ?VHOST, "\"\n",
     "  username = \"guest\"\n",
     "  password = \"", maps:get(password, Opts, "guest"), "\"\n\n",
     case Module of
         true -> ["[modules.mod_event_pusher.rabbit]\n",
                  "[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n",
                  "  name = \"ep_wpool_chat\"\n"];
         false -> []
     end].

drain_reports(Acc) ->
    receive
        {ep_log_capture, log, Report} -> drain_reports([Report | Acc])
    after 0 -> lists:reverse(Acc)
    end.

parse(Toml) ->
    Path = filename:join(ct:get_config(priv_dir, "/tmp"),
                         "wpool_rabbit_" ++ integer_to_list(erlang:unique_integer([positive]))
                         ++ ".toml"),
    ok = file:write_file(Path, Toml),
    try mongoose_config_parser:parse_file(Path) after file:delete(Path) end.

wait_connections(N) ->
    ep_wait:until(fun() -> ep_amqp:connections_on(?VHOST) =:= N end, ?WAIT_MS,
                  #{name => {connections_on, ?VHOST, N}, interval => 500}).

%% A consumer of the chat exchange (declared by the module).
consumer() ->
    Conn = ep_amqp:connect(#{virtual_host => ?VHOST}),
    Queue = ep_amqp:temp_queue(Conn),
    ok = ep_amqp:bind(Conn, Queue, <<"ep_wpool_chat">>, <<"#">>),
    _ = ep_amqp:subscribe(Conn, Queue),
    put(consumer, Conn),
    Conn.

send_chat(Body) ->
    ep_test_host:user_send_message(
      alice(), ep_test_host:message(jid:to_bare(bob()), <<"chat">>, Body)).

%% @doc Overload does not slow the node: with the broker stopped, 100,000
%% chat events through the rabbit backend are dropped, each counted in the
%% pool's stats, and the log holds a few lines per second that add up to
%% the same count (mongoose_event_pusher_drop_log), not a line per event.
-module(mongoose_event_pusher_drop_log_SUITE).

-include("ep_suite.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([drops_into_a_stopped_broker_are_counted_exactly_and_logged_per_second/1,
         a_lone_drop_is_logged_at_once_with_its_details/1]).
%% logger handler
-export([log/2]).

-define(VHOST, <<"ep_drop_log">>).
-define(EVENTS, 100000).
%% One worker, a queue of 10: (nearly) every event is dropped as overloaded.
-define(QUEUE, 10).
-define(WAIT_MS, 15000).
-define(HANDLER, ep_drop_log_capture).

all() ->
    [drops_into_a_stopped_broker_are_counted_exactly_and_logged_per_second,
     a_lone_drop_is_logged_at_once_with_its_details].

init_per_suite(Config) ->
    ok = ep_amqp:wait_up(60000),
    ok = ep_amqp:add_vhost(?VHOST),
    Config.

end_per_suite(_Config) ->
    ok = ep_amqp:delete_vhost(?VHOST).

init_per_testcase(_Case, Config) ->
    ok = ep_amqp:wait_up(60000),
    ok = ep_test_host:boot(toml()),
    %% Every drop report of this node, with the time it was logged.
    ok = logger:add_handler(?HANDLER, ?MODULE, #{level => all, config => #{pid => self()}}),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(?HANDLER),
    ok = ep_amqp:start_app(60000),
    ep_test_host:shutdown().

%%====================================================================
%% Cases
%%====================================================================

drops_into_a_stopped_broker_are_counted_exactly_and_logged_per_second(doc) ->
    ["100,000 chat events with the broker stopped: the pool's drop counters, the failed "
     "publishes reported and the counts in the log agree, in at most 2 lines per second"];
drops_into_a_stopped_broker_are_counted_exactly_and_logged_per_second(_Config) ->
    ok = ep_amqp:stop_app(),
    Before = dropped(pool_stats()),
    T0 = erlang:monotonic_time(millisecond),
    send_chats(?EVENTS),
    ElapsedMs = erlang:monotonic_time(millisecond) - T0,
    ok = mongoose_event_pusher_drop_log:flush(),
    Stats = pool_stats(),
    Dropped = dropped(Stats) - Before,
    Lines = reports(event_pusher_rabbit_dropped),
    Logged = lists:sum([maps:get(dropped_after_it, R, 1) || {_T, R} <- Lines]),
    ct:log("~p events in ~p ms; stats ~p; ~p lines: ~p", [?EVENTS, ElapsedMs, Stats,
                                                         length(Lines), Lines]),
    %% The queue holds ?QUEUE, the rest is dropped.
    ?assert(Dropped >= ?EVENTS - ?QUEUE),
    ?assertEqual(Dropped, Logged),
    %% Per second of the run (and the flush at its end): the first drop and
    %% the count of the others.
    ?assert(length(Lines) =< 2 * (ElapsedMs div 1000 + 2)),
    [?assertMatch(#{reason := overloaded, exchange := <<"ep_drop_chat">>}, R)
     || {_T, R} <- Lines].

a_lone_drop_is_logged_at_once_with_its_details(doc) ->
    ["A single drop is logged by the caller at once (no wait for the interval), with the "
     "event's details, and no count line follows it"];
a_lone_drop_is_logged_at_once_with_its_details(_Config) ->
    ok = ep_amqp:stop_app(),
    send_chats(?QUEUE),
    %% The queue is full now: the next event is the only drop.
    Before = dropped(pool_stats()),
    send_chats(1),
    ?assertEqual(Before + 1, dropped(pool_stats())),
    %% Logged before the call returned: already in our mailbox.
    [{_, Report}] = [L || L = {_, #{reason := overloaded}} <- reports(event_pusher_rabbit_dropped)],
    ?assertMatch(#{routing_key := <<"bob@localhost.chat_msg_recv">>}, Report),
    ?assertNot(maps:is_key(dropped_after_it, Report)),
    ok = mongoose_event_pusher_drop_log:flush(),
    ?assertEqual([], reports(event_pusher_rabbit_dropped)).

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

toml() ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.rabbit.event_pusher]\n",
     "  workers = 1\n",
     "  max_worker_queue_len = ", integer_to_list(?QUEUE), "\n",
     "[outgoing_pools.rabbit.event_pusher.connection]\n",
     "  host = \"127.0.0.1\"\n",
     "  virtual_host = \"", ?VHOST, "\"\n\n",
     "[modules.mod_event_pusher.rabbit]\n",
     "[modules.mod_event_pusher.rabbit.chat_msg_exchange]\n",
     "  name = \"ep_drop_chat\"\n"].

send_chats(0) ->
    ok;
send_chats(N) ->
    {ok, _} = ep_test_host:filter_local_packet(
                alice(), bob(), ep_test_host:message(bob(), <<"chat">>, <<"overload">>)),
    send_chats(N - 1).

pool_stats() ->
    Pool = mongoose_event_pusher_pool_registry:lookup(rabbit, ep_test_host:host_type(),
                                                      event_pusher),
    mongoose_event_pusher_nif:pool_stats(Pool).

%% Everything the pool gave up, whatever the reason.
dropped(Stats) ->
    lists:sum([V || {K, V} <- maps:to_list(Stats),
                    lists:prefix("dropped", atom_to_list(K))]).

%% The reports with `what' logged so far (taken from the mailbox).
reports(What) ->
    receive
        {?MODULE, T, Report = #{what := What}} -> [{T, Report} | reports(What)];
        {?MODULE, _T, _Other} -> reports(What)
    after 0 ->
            []
    end.

-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{msg := {report, Report}}, #{config := #{pid := Pid}}) when is_map(Report) ->
    Pid ! {?MODULE, erlang:monotonic_time(millisecond), Report},
    ok;
log(_Event, _HandlerConfig) ->
    ok.

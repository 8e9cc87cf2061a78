%% @doc (ours) mod_event_pusher_http against a real HTTP sink that goes
%% down, is slow or asks to retry later (doc/http.md "Outages, timeouts,
%% Retry-After and event IDs"): the event ID header and the ID callbacks
%% see, an outage held without loss, timeouts counted as outcome unknown,
%% and `Retry-After' obeyed (measured at the sink).
-module(mod_event_pusher_http_delivery_SUITE).

-include("ep_suite.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([id_header_carries_the_id_callbacks_see/1,
         without_the_option_no_id_header_is_sent/1,
         a_retry_carries_the_same_id/1,
         sink_down_for_10s_under_load_loses_nothing/1,
         slow_sink_gets_each_event_once_counted_as_timeout/1,
         retry_on_timeout_resends_with_the_same_id/1,
         too_many_requests_with_retry_after_waits_before_the_retry/1,
         malformed_delivery_terms_are_badarg/1]).
%% results of the direct submits
-export([handle_pool_result/2]).

-define(WAIT_MS, 5000).
-define(METRIC, mod_event_pusher_http_sent).
-define(OUTAGE_MS, 10000).
%% How late the pool may notice that the sink is back (its longest wait
%% between probes is 5 s), plus the backlog.
-define(RECOVERY_MS, 20000).
-define(UUID_RE, "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").

all() ->
    [{group, event_ids}, {group, outages}, {group, timeouts}, {group, retry_after},
     {group, nif}].

groups() ->
    [{event_ids, [], [id_header_carries_the_id_callbacks_see,
                      without_the_option_no_id_header_is_sent,
                      a_retry_carries_the_same_id]},
     {outages, [], [sink_down_for_10s_under_load_loses_nothing]},
     {timeouts, [], [slow_sink_gets_each_event_once_counted_as_timeout,
                     retry_on_timeout_resends_with_the_same_id]},
     {retry_after, [], [too_many_requests_with_retry_after_waits_before_the_retry]},
     {nif, [], [malformed_delivery_terms_are_badarg]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    {RequestTimeout, Handler} = setup(Case),
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_log_capture:start(),
    ok = mock_id_callback(),
    ok = ep_test_host:boot([ep_test_host:general_toml(), pool_toml(Sink, RequestTimeout),
                            "[modules.mod_event_pusher.http]\n",
                            "[[modules.mod_event_pusher.http.handlers]]\n", Handler]),
    case lists:member(Case, instrumented()) of
        true -> instrument_helper:start([{?METRIC, #{host_type => ep_test_host:host_type()}}]);
        false -> ok
    end,
    [{sink, Sink} | Config].

end_per_testcase(Case, Config) ->
    Sink = ?config(sink, Config),
    ok = ep_log_capture:stop(),
    ok = ep_http_sink:up(Sink),
    ep_test_host:shutdown(),
    ep_http_sink:stop(Sink),
    meck:unload(ep_http_id_callback),
    case lists:member(Case, instrumented()) of
        true -> instrument_helper:stop();
        false -> ok
    end.

instrumented() ->
    [slow_sink_gets_each_event_once_counted_as_timeout,
     too_many_requests_with_retry_after_waits_before_the_retry].

%% {request_timeout, the handler's TOML}
setup(id_header_carries_the_id_callbacks_see) ->
    {2000, "path = \"/id\"\ncallback_module = \"ep_http_id_callback\"\n"
           "event_id_header = \"Idempotency-Key\"\n"};
setup(without_the_option_no_id_header_is_sent) ->
    {2000, "path = \"/notify\"\n"};
setup(a_retry_carries_the_same_id) ->
    {2000, "path = \"/notify\"\nevent_id_header = \"webhook-id\"\n"};
setup(sink_down_for_10s_under_load_loses_nothing) ->
    {2000, "path = \"/notify\"\nmax_age = 60000\nmax_retries = 0\n"};
setup(slow_sink_gets_each_event_once_counted_as_timeout) ->
    {300, "path = \"/notify\"\nmax_retries = 2\nretry_base_delay = 10\n"};
setup(retry_on_timeout_resends_with_the_same_id) ->
    {300, "path = \"/notify\"\nmax_retries = 1\nretry_base_delay = 10\n"
          "retry_on_timeout = true\nevent_id_header = \"Idempotency-Key\"\n"};
setup(too_many_requests_with_retry_after_waits_before_the_retry) ->
    {2000, "path = \"/notify\"\n"};
setup(malformed_delivery_terms_are_badarg) ->
    {2000, "path = \"/notify\"\n"}.

pool_toml(Sink, RequestTimeout) ->
    ["[outgoing_pools.http.http_pool]\n",
     "  workers = 4\n",
     "  [outgoing_pools.http.http_pool.connection]\n",
     "    host = \"", ep_http_sink:url(Sink), "\"\n",
     "    request_timeout = ", integer_to_list(RequestTimeout), "\n\n"].

%% A callback module that writes the `event_id' of its Opts into the body
%% and a header, and records what should_make_req saw.
mock_id_callback() ->
    ok = meck:new(ep_http_id_callback, [non_strict, no_link]),
    ok = meck:expect(ep_http_id_callback, should_make_req,
                     fun(_, _, _, _, _, #{event_id := Id}) -> is_binary(Id) end),
    ok = meck:expect(ep_http_id_callback, prepare_body,
                     fun(_, _, _, _, _, _, #{event_id := Id}) -> Id end),
    ok = meck:expect(ep_http_id_callback, prepare_headers,
                     fun(_, _, _, _, _, _, #{event_id := Id}) ->
                             [{<<"x-callback-id">>, Id}, {<<"idempotency-key">>, <<"theirs">>}]
                     end).

%%====================================================================
%% Event IDs
%%====================================================================

id_header_carries_the_id_callbacks_see(doc) ->
    ["event_id_header names a header carrying the event's ID (a UUIDv7), the same ID "
     "the callbacks find as event_id in their Opts; it replaces one the callback gave"];
id_header_carries_the_id_callbacks_see(Config) ->
    send_chat(<<"one">>),
    send_chat(<<"two">>),
    Requests = all_requests(Config, 2),
    Ids = [begin
               Id = ep_http_sink:header(<<"idempotency-key">>, R),
               ?assertMatch({match, _}, re:run(Id, ?UUID_RE)),
               ?assertEqual(Id, ep_http_sink:header(<<"x-callback-id">>, R)),
               ?assertEqual(Id, Body),
               ?assertEqual([Id], [V || {N, V} <- Headers, N =:= <<"idempotency-key">>]),
               Id
           end || R = #{body := Body, headers := Headers} <- Requests],
    ?assertEqual(2, length(lists:usort(Ids))).

without_the_option_no_id_header_is_sent(doc) ->
    ["Without event_id_header the request has exactly MongooseIM's headers"];
without_the_option_no_id_header_is_sent(Config) ->
    send_chat(<<"plain">>),
    [#{headers := Headers}] = all_requests(Config, 1),
    ?assertEqual([<<"content-length">>, <<"content-type">>, <<"host">>],
                 lists:sort([N || {N, _} <- Headers])).

a_retry_carries_the_same_id(doc) ->
    ["A request retried after a 500 carries the same ID in its header"];
a_retry_carries_the_same_id(Config) ->
    ok = ep_http_sink:queue_statuses(?config(sink, Config), any, [500]),
    send_chat(<<"again">>),
    [R1 = #{status := 500}, R2 = #{status := 200}] = all_requests(Config, 2),
    Id = ep_http_sink:header(<<"webhook-id">>, R1),
    ?assertMatch({match, _}, re:run(Id, ?UUID_RE)),
    ?assertEqual(Id, ep_http_sink:header(<<"webhook-id">>, R2)).

%%====================================================================
%% Outages
%%====================================================================

sink_down_for_10s_under_load_loses_nothing(doc) ->
    ["With max_age, the sink down for 10 s under a steady load (no retries allowed): "
     "every event arrives once after it returns, none dropped"];
sink_down_for_10s_under_load_loses_nothing(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:down(Sink),
    Deadline = erlang:monotonic_time(millisecond) + ?OUTAGE_MS,
    N = steady_load(Deadline, 0),
    ok = ep_http_sink:up(Sink),
    Requests = ep_http_sink:wait_for_requests(Sink, N, ?RECOVERY_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Bodies = [B || #{body := B, status := 200} <- ep_http_sink:requests(Sink)],
    Expected = [body(I) || I <- lists:seq(1, N)],
    ?assertEqual(lists:sort(Expected), lists:sort(Bodies)),
    ?assertEqual(N, length(Requests)),
    ?assertMatch(#{sent := N, dropped_retries_exhausted := 0, dropped_expired := 0,
                   dropped_overloaded := 0},
                 ep_test_host:http_pool_stats(http_pool)),
    ?assertEqual([], ep_log_capture:logged(event_pusher_http_dropped)),
    ct:log("~p events held through a ~p ms outage", [N, ?OUTAGE_MS]).

%% Chat messages at about 50 a second until Deadline; returns how many.
%% The pause paces the load (it waits for nothing).
steady_load(Deadline, Sent) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true ->
            Sent;
        false ->
            send_chat(message(Sent + 1)),
            timer:sleep(20),
            steady_load(Deadline, Sent + 1)
    end.

%%====================================================================
%% Timeouts
%%====================================================================

slow_sink_gets_each_event_once_counted_as_timeout(doc) ->
    ["A sink answering after the request timeout gets each event once; each is counted as "
     "timeout (outcome unknown) and logged so, not as dropped"];
slow_sink_gets_each_event_once_counted_as_timeout(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, {200, #{delay => 1000}}),
    [send_chat(message(I)) || I <- lists:seq(1, 5)],
    ok = ep_wait:until(fun() -> timeouts() =:= 5 end, ?WAIT_MS, #{name => five_timeouts}),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Bodies = [B || #{body := B} <- ep_http_sink:requests(Sink)],
    ?assertEqual(lists:sort([body(I) || I <- lists:seq(1, 5)]), lists:sort(Bodies)),
    ?assertMatch(#{retried := 0, dropped_retries_exhausted := 0},
                 ep_test_host:http_pool_stats(http_pool)),
    Logged = wait_logs(event_pusher_http_timeout, 5),
    ?assert(lists:all(fun(#{outcome := unknown}) -> true end, Logged)),
    ?assertEqual([], ep_log_capture:logged(event_pusher_http_dropped)),
    instrument_helper:wait_and_assert(?METRIC, labels(),
                                      fun(M) -> maps:get(failure_count, M, 0) =:= 1 end).

retry_on_timeout_resends_with_the_same_id(doc) ->
    ["With retry_on_timeout a timed-out request is sent again with the same ID; "
     "still timing out, it ends as timeout"];
retry_on_timeout_resends_with_the_same_id(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:set_status(Sink, default, {200, #{delay => 1000}}),
    send_chat(<<"slow">>),
    ok = ep_wait:until(fun() -> timeouts() =:= 1 end, ?WAIT_MS, #{name => one_timeout}),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    [R1, R2] = ep_http_sink:requests(Sink),
    Id = ep_http_sink:header(<<"idempotency-key">>, R1),
    ?assertMatch({match, _}, re:run(Id, ?UUID_RE)),
    ?assertEqual(Id, ep_http_sink:header(<<"idempotency-key">>, R2)),
    ?assertMatch(#{retried := 1}, ep_test_host:http_pool_stats(http_pool)).

%%====================================================================
%% Retry-After
%%====================================================================

too_many_requests_with_retry_after_waits_before_the_retry(doc) ->
    ["A 429 with Retry-After: 1 then a 200: delivered once, the second attempt at "
     "least 1 s after the first (measured at the sink)"];
too_many_requests_with_retry_after_waits_before_the_retry(Config) ->
    ok = ep_http_sink:queue_statuses(?config(sink, Config), any,
                                     [{429, #{retry_after => <<"1">>}}]),
    send_chat(<<"later">>),
    [#{status := 429, at := T1, body := B}, #{status := 200, at := T2, body := B}] =
        all_requests(Config, 2),
    ?assert(T2 - T1 >= 1000000, T2 - T1),
    instrument_helper:wait_and_assert(
      ?METRIC, labels(),
      fun(M) -> maps:get(response_code, M, undefined) =:= <<"200">> end).

%%====================================================================
%% The NIF
%%====================================================================

malformed_delivery_terms_are_badarg(doc) ->
    ["http_submit/2: a Delivery element of the wrong shape is badarg and sends "
     "nothing; a well-formed one is sent"];
malformed_delivery_terms_are_badarg(Config) ->
    Pool = mongoose_event_pusher_pool_registry:lookup(http, ep_test_host:host_type(), http_pool),
    Job = fun(Delivery) ->
                  {{?MODULE, direct}, <<"direct">>, [], <<"body">>, 0, 0,
                   mongoose_event_pusher_event_id:new(), Delivery}
          end,
    [?assertError(badarg, mongoose_event_pusher_nif:http_submit(Pool, Job(Bad)))
     || Bad <- [{true, 0.5, 1}, {yes, infinity, 1}, {true, forever, 1}, {true, infinity},
                {true, infinity, -1}, {true, -1, 1}, [true, infinity, 1], undefined]],
    ?assertError(badarg, mongoose_event_pusher_nif:http_submit(
                           Pool, erlang:append_element(Job({false, infinity, 0}), extra))),
    ok = mongoose_event_pusher_nif:http_submit(Pool, Job({true, 60000, 0})),
    [#{path := <<"/direct">>}] = ep_http_sink:wait_for_requests(?config(sink, Config), 1,
                                                                 ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    ?assertEqual(1, length(ep_http_sink:requests(?config(sink, Config)))).

%% @doc Results of the direct submits: nothing to report.
-spec handle_pool_result(direct, term()) -> ok.
handle_pool_result(direct, _Outcome) ->
    ok.

%%====================================================================
%% Helpers
%%====================================================================

-include("ep_suite_users.hrl").

labels() ->
    #{host_type => ep_test_host:host_type()}.

message(I) ->
    <<"m", (integer_to_binary(I))/binary>>.

body(I) ->
    <<"author=alice&server=localhost&receiver=bob&message=", (message(I))/binary>>.

send_chat(Text) ->
    {ok, _} = ep_test_host:user_send_message(alice(),
                                             ep_test_host:message(bob(), <<"chat">>, Text)),
    ok.

timeouts() ->
    maps:get(timeouts, ep_test_host:http_pool_stats(http_pool), 0).

%% The next N reports with `what => What'.
wait_logs(What, N) ->
    [ep_log_capture:wait_for(What, ?WAIT_MS) || _ <- lists:seq(1, N)].

%% Waits for N requests and then for the pool to be idle: after that nothing
%% else can arrive, so the sink's list is complete.
all_requests(Config, N) ->
    Sink = ?config(sink, Config),
    _ = ep_http_sink:wait_for_requests(Sink, N, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    Requests = ep_http_sink:requests(Sink),
    ?assertEqual(N, length(Requests), Requests),
    Requests.

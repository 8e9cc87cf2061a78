%% @doc The lifecycle of the Rust pools behind the http backend: module
%% stop/start cycles leak nothing, a full queue rejects and counts, and a
%% stopping module delivers what was submitted before.
-module(mongoose_event_pusher_pool_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([stop_start_cycles_leak_no_os_threads/1,
         stop_start_cycles_leak_no_file_descriptors/1,
         stop_start_cycles_leak_no_memory/1,
         full_queue_rejects_counts_and_reports_the_request/1,
         stopping_the_module_delivers_everything_submitted_before/1]).
%% logger handler and pool result callback used by the cases
-export([log/2, handle_pool_result/2]).

-define(ALICE, <<"alice@localhost/phone">>).
-define(BOB, <<"bob@localhost/laptop">>).
-define(WAIT_MS, 5000).
-define(CYCLES, 100).
-define(WARM_UP_CYCLES, 3).
-define(SETTLE_MS, 15000).
%% Allowed growth after ?CYCLES cycles; a leak of one thread, socket or pool
%% per cycle would be ?CYCLES times what one costs.
-define(MAX_EXTRA_THREADS, 2).
-define(MAX_EXTRA_FDS, 4).
-define(MAX_BEAM_GROWTH_BYTES, 4 * 1024 * 1024).
-define(MAX_RSS_GROWTH_KB, 8 * 1024).
-define(METRIC, mod_event_pusher_http_sent).

all() ->
    [stop_start_cycles_leak_no_os_threads,
     stop_start_cycles_leak_no_file_descriptors,
     stop_start_cycles_leak_no_memory,
     full_queue_rejects_counts_and_reports_the_request,
     stopping_the_module_delivers_everything_submitted_before].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    {ok, Sink} = ep_http_sink:start(),
    ok = ep_test_host:boot(toml(Case, Sink)),
    case Case of
        full_queue_rejects_counts_and_reports_the_request ->
            instrument_helper:start([{?METRIC, #{host_type => ep_test_host:host_type()}}]),
            ok = logger:add_handler(?MODULE, ?MODULE, #{level => all,
                                                         config => #{pid => self()}});
        _ ->
            ok
    end,
    [{sink, Sink} | Config].

end_per_testcase(Case, Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:release(Sink),
    ep_test_host:shutdown(),
    ep_http_sink:stop(Sink),
    case Case of
        full_queue_rejects_counts_and_reports_the_request ->
            _ = logger:remove_handler(?MODULE),
            instrument_helper:stop();
        _ ->
            ok
    end.

%% A tiny queue for the overload case: one worker, one slot.
toml(full_queue_rejects_counts_and_reports_the_request, Sink) ->
    toml(Sink, 1, ["  max_worker_queue_len = 1\n"]);
toml(_Case, Sink) ->
    toml(Sink, 2, []).

toml(Sink, Workers, Extra) ->
    [ep_test_host:general_toml(),
     "[outgoing_pools.http.http_pool]\n",
     "  workers = ", integer_to_list(Workers), "\n",
     Extra,
     "  [outgoing_pools.http.http_pool.connection]\n",
     "    host = \"", ep_http_sink:url(Sink), "\"\n\n",
     "[[modules.mod_event_pusher.http.handlers]]\n",
     "  path = \"/notify\"\n"].

%%====================================================================
%% Stop/start cycles
%%====================================================================

stop_start_cycles_leak_no_os_threads(doc) ->
    ["100 module stop/start cycles, each delivering a message, leave the OS thread count as it was"];
stop_start_cycles_leak_no_os_threads(Config) ->
    assert_no_growth(Config, fun os_threads/0, ?MAX_EXTRA_THREADS, os_threads).

stop_start_cycles_leak_no_file_descriptors(doc) ->
    ["100 module stop/start cycles, each delivering a message, leave the open file descriptors as they were"];
stop_start_cycles_leak_no_file_descriptors(Config) ->
    assert_no_growth(Config, fun open_fds/0, ?MAX_EXTRA_FDS, open_fds).

stop_start_cycles_leak_no_memory(doc) ->
    ["100 module stop/start cycles, each delivering a message, grow neither the BEAM's memory nor the RSS"];
stop_start_cycles_leak_no_memory(Config) ->
    Sink = ?config(sink, Config),
    cycles(Sink, ?WARM_UP_CYCLES),
    Beam0 = beam_memory(),
    Rss0 = rss_kb(),
    cycles(Sink, ?CYCLES),
    ct:log("beam memory ~p -> ~p bytes; rss ~p -> ~p kB", [Beam0, beam_memory(), Rss0, rss_kb()]),
    _ = ep_wait:for(fun beam_memory/0, fun(B) -> B - Beam0 =< ?MAX_BEAM_GROWTH_BYTES end,
                    ?SETTLE_MS, #{name => beam_memory, baseline => Beam0}),
    _ = ep_wait:for(fun rss_kb/0, fun(R) -> R - Rss0 =< ?MAX_RSS_GROWTH_KB end,
                    ?SETTLE_MS, #{name => rss_kb, baseline => Rss0}),
    ok.

assert_no_growth(Config, Measure, Tolerance, Name) ->
    Sink = ?config(sink, Config),
    cycles(Sink, ?WARM_UP_CYCLES),
    Baseline = Measure(),
    cycles(Sink, ?CYCLES),
    ct:log("~p: ~p after warm-up, ~p after ~p cycles", [Name, Baseline, Measure(), ?CYCLES]),
    %% Threads and sockets of stopped pools may take a moment to go away.
    _ = ep_wait:for(Measure, fun(N) -> N - Baseline =< Tolerance end, ?SETTLE_MS,
                    #{name => Name, baseline => Baseline}),
    ok.

%% Each cycle stops and starts every module (the pool closes and starts
%% again) and proves the new pool delivers.
cycles(_Sink, 0) ->
    ok;
cycles(Sink, N) ->
    ok = ep_test_host:restart_modules(),
    ok = ep_http_sink:reset(Sink),
    send_chat(<<"cycle">>),
    [_] = ep_http_sink:wait_for_requests(Sink, 1, ?WAIT_MS),
    cycles(Sink, N - 1).

%%====================================================================
%% Overload
%%====================================================================

full_queue_rejects_counts_and_reports_the_request(doc) ->
    ["With the only worker busy and the one-slot queue full, a request is rejected as overloaded, counted, logged and instrumented"];
full_queue_rejects_counts_and_reports_the_request(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:hold(Sink),
    send_chat(<<"in flight">>),
    [_] = ep_http_sink:wait_for_requests(Sink, 1, ?WAIT_MS),
    send_chat(<<"queued">>),
    send_chat(<<"rejected">>),
    #{dropped_overloaded := 1, rejected := 1, queued := 1, in_flight := 1} =
        ep_test_host:http_pool_stats(http_pool),
    receive
        {log, warning, #{what := event_pusher_http_dropped, reason := overloaded}} -> ok
    after 0 ->
        ct:fail(no_overload_warning_logged)
    end,
    instrument_helper:wait_and_assert(
      ?METRIC, #{host_type => ep_test_host:host_type()},
      fun(M) -> maps:get(failure_count, M, undefined) =:= 1 andalso
                    maps:get(sender, M, undefined) =:= <<"alice">> end),
    ok = ep_http_sink:release(Sink),
    _ = ep_http_sink:wait_for_requests(Sink, 2, ?WAIT_MS),
    ok = ep_test_host:wait_http_pool_idle(http_pool, ?WAIT_MS),
    ?assertEqual([<<"in flight">>, <<"queued">>],
                 [message_text(B) || #{body := B} <- ep_http_sink:requests(Sink)]),
    %% the responses to the two delivered requests
    instrument_helper:wait_and_assert(
      ?METRIC, #{host_type => ep_test_host:host_type()},
      fun(M) -> maps:get(response_code, M, undefined) =:= <<"200">> end).

%%====================================================================
%% Drain on stop
%%====================================================================

stopping_the_module_delivers_everything_submitted_before(doc) ->
    ["Stopping the module while requests are queued and in flight delivers every one of them before the pool closes"];
stopping_the_module_delivers_everything_submitted_before(Config) ->
    Sink = ?config(sink, Config),
    ok = ep_http_sink:hold(Sink),
    Texts = [integer_to_binary(I) || I <- lists:seq(1, 20)],
    [send_chat(T) || T <- Texts],
    %% Both workers hold a request at the server; the rest is queued.
    _ = ep_http_sink:wait_for_requests(Sink, 2, ?WAIT_MS),
    #{queued := 18, in_flight := 2} = ep_test_host:http_pool_stats(http_pool),
    Pool = mongoose_event_pusher_pool_registry:lookup(http, ep_test_host:host_type(), http_pool),
    {Stopper, MRef} = spawn_monitor(fun() -> ep_test_host:shutdown() end),
    %% The pool is closing once it refuses work; only then does the server answer.
    ok = wait_until_closed(Pool),
    ok = ep_http_sink:release(Sink),
    receive
        {'DOWN', MRef, process, Stopper, normal} -> ok;
        {'DOWN', MRef, process, Stopper, Reason} -> ct:fail({shutdown_failed, Reason})
    after 2 * ?WAIT_MS ->
        ct:fail(shutdown_did_not_return)
    end,
    Received = [message_text(B) || #{body := B} <- ep_http_sink:requests(Sink),
                                   message_text(B) =/= probe],
    ?assertEqual(lists:sort(Texts), lists:sort(Received)),
    #{submitted := Submitted, sent := Sent, dropped_closed := DroppedClosed} =
        mongoose_event_pusher_nif:pool_stats(Pool),
    ?assertEqual({Submitted, 0}, {Sent, DroppedClosed}),
    ?assertEqual(Submitted, length(ep_http_sink:requests(Sink))).

%% Probes the pool with a direct submit until it answers `closed'. A probe
%% accepted before that is a request like the others: it must arrive too.
wait_until_closed(Pool) ->
    Probe = {{?MODULE, probe}, <<"probe">>, [], <<"probe">>, 0, 0,
             mongoose_event_pusher_event_id:new()},
    ep_wait:until(fun() ->
                          case mongoose_event_pusher_nif:http_submit(Pool, Probe) of
                              ok -> false;
                              {error, closed} -> true
                          end
                  end, ?WAIT_MS, #{name => pool_closing}).

%% @doc Results of the probes (tag `{?MODULE, probe}'): nothing to report.
-spec handle_pool_result(probe, term()) -> ok.
handle_pool_result(probe, _Outcome) ->
    ok.

%%====================================================================
%% Helpers
%%====================================================================

send_chat(Text) ->
    Msg = ep_test_host:message(ep_test_host:jid(?BOB), <<"chat">>, Text),
    {ok, _} = ep_test_host:user_send_message(ep_test_host:jid(?ALICE), Msg),
    ok.

%% The `message' field of the default callbacks' form body.
message_text(<<"probe">>) ->
    probe;
message_text(Body) ->
    {_, Text} = lists:keyfind(<<"message">>, 1, uri_string:dissect_query(Body)),
    Text.

os_threads() ->
    {ok, Tasks} = file:list_dir("/proc/self/task"),
    length(Tasks).

open_fds() ->
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    length(Fds).

beam_memory() ->
    [erlang:garbage_collect(P) || P <- processes()],
    erlang:memory(total).

rss_kb() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]),
                   binary:match(L, <<"VmRSS:">>) =/= nomatch],
    [_, Kb | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kb).

%% @doc A logger handler forwarding each report to the test process.
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{level := Level, msg := {report, Report}}, #{config := #{pid := Pid}}) when is_map(Report) ->
    Pid ! {log, Level, Report},
    ok;
log(_Event, _Config) ->
    ok.

%% @doc The structured log reports of this node, sent to the test case's
%% process while the capture runs: start/0 in the case, wait_for/2 for the
%% report with a given `what', stop/0 in its end_per_testcase.
-module(ep_log_capture).

-export([start/0, stop/0, wait_for/2, logged/1]).
%% logger handler callback
-export([log/2]).

-spec start() -> ok.
start() ->
    _ = logger:remove_handler(?MODULE),
    ok = logger:add_handler(?MODULE, ?MODULE, #{level => all, config => #{pid => self()}}).

-spec stop() -> ok.
stop() ->
    _ = logger:remove_handler(?MODULE),
    ok.

%% @doc The first report with `what => What' that arrives within TimeoutMs.
-spec wait_for(atom(), timeout()) -> map().
wait_for(What, TimeoutMs) ->
    receive
        {?MODULE, log, Report = #{what := What}} -> Report
    after TimeoutMs ->
            ct:fail({log_not_seen, What})
    end.

%% @doc The reports with `what => What' captured so far, without waiting.
-spec logged(atom()) -> [map()].
logged(What) ->
    receive
        {?MODULE, log, Report = #{what := What}} -> [Report | logged(What)]
    after 0 ->
            []
    end.

-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{msg := {report, Report}}, #{config := #{pid := Pid}}) when is_map(Report) ->
    Pid ! {?MODULE, log, Report},
    ok;
log(_Event, _HandlerConfig) ->
    ok.

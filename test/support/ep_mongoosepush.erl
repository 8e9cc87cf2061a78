%% @doc A MongoosePush stand-in for tests and the benchmark: an
%% ep_http_sink (a real HTTP server) that records each notification POSTed
%% to it and answers the statuses a test chooses (200 by default), plus the
%% TOML of an outgoing http pool pointing at it.
-module(ep_mongoosepush).

-export([start/0, stop/1, pool_toml/3, pool_toml/4, notifications/1, wait_for_notifications/3,
         answer/2, answer_always/2, down/1, up/1]).

-type notification() :: #{path := binary(), body := binary(),
                          content_type := binary() | undefined, status := 100..599}.
-export_type([notification/0]).

%% @doc Starts the stand-in on a free port of 127.0.0.1.
-spec start() -> {ok, ep_http_sink:sink()}.
start() ->
    ep_http_sink:start().

-spec stop(ep_http_sink:sink()) -> ok.
stop(Sink) ->
    ep_http_sink:stop(Sink).

%% @doc `[outgoing_pools.http.<Tag>]' with its connection to the stand-in.
-spec pool_toml(ep_http_sink:sink(), string(), string()) -> iodata().
pool_toml(Sink, Tag, PathPrefix) ->
    pool_toml(Sink, Tag, PathPrefix, #{}).

%% @doc The same with `request_timeout' (ms, default 2000) of the test's choice.
-spec pool_toml(ep_http_sink:sink(), string(), string(), #{request_timeout => pos_integer()}) ->
          iodata().
pool_toml(Sink, Tag, PathPrefix, Opts) ->
    ["[outgoing_pools.http.", Tag, "]\n",
     "  workers = 4\n",
     "  [outgoing_pools.http.", Tag, ".connection]\n",
     "    host = \"", ep_http_sink:url(Sink), "\"\n",
     "    path_prefix = \"", PathPrefix, "\"\n",
     "    request_timeout = ", integer_to_list(maps:get(request_timeout, Opts, 2000)), "\n\n"].

%% @doc Every notification received so far, in arrival order.
-spec notifications(ep_http_sink:sink()) -> [notification()].
notifications(Sink) ->
    [notification(R) || R <- ep_http_sink:requests(Sink)].

%% @doc Waits until at least N notifications arrived and returns them all.
-spec wait_for_notifications(ep_http_sink:sink(), non_neg_integer(), timeout()) ->
          [notification()].
wait_for_notifications(Sink, N, TimeoutMs) ->
    [notification(R) || R <- ep_http_sink:wait_for_requests(Sink, N, TimeoutMs)].

%% @doc The next requests get these statuses, in order (then 200 again).
-spec answer(ep_http_sink:sink(), [ep_http_sink:status()]) -> ok.
answer(Sink, Statuses) ->
    ep_http_sink:queue_statuses(Sink, any, Statuses).

%% @doc Every request from now on gets Status.
-spec answer_always(ep_http_sink:sink(), ep_http_sink:status()) -> ok.
answer_always(Sink, Status) ->
    ep_http_sink:set_status(Sink, default, Status).

%% @doc MongoosePush is down: connections are refused (open ones closed).
-spec down(ep_http_sink:sink()) -> ok.
down(Sink) ->
    ep_http_sink:down(Sink).

%% @doc Back on the same port.
-spec up(ep_http_sink:sink()) -> ok.
up(Sink) ->
    ok = ep_http_sink:up(Sink).

-spec notification(ep_http_sink:request()) -> notification().
notification(Request = #{path := Path, body := Body, status := Status}) ->
    #{path => Path, body => Body, status => Status,
      content_type => ep_http_sink:header(<<"content-type">>, Request)}.

%% @doc MongooseIM's way of publishing to SNS, for the benchmark's baseline
%% row: the `push_event' handler (priority 50) asks the plugin for GUIDs and
%% attributes, builds the notification and casts it to one of `pool_size'
%% Erlang workers (round robin); each worker publishes synchronously, one
%% HTTP request per notification, and takes the next one only when SNS
%% answered. Written for the benchmark from MongooseIM's documented
%% behaviour; differences (stated in bench/sns/README.md): httpc instead of
%% erlcloud's client, a fixed Authorization header instead of computing a
%% SigV4 signature per request (moto checks none; the signing would only add
%% to MongooseIM's cost), and a plain `Message' (no `MessageStructure=json').
-module(bench_sns_mim).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([start/4, stop/0, done/0, requests/0, push_event/3]).

-define(PROFILE, bench_sns_mim).
-define(WORKERS, {?MODULE, workers}).
-define(COUNTERS, {?MODULE, counters}).
%% counters: 1 = published, 2 = requests, 3 = next worker
-define(PUBLISHED, 1).
-define(REQUESTS, 2).
-define(NEXT, 3).

%% @doc Starts PoolSize workers publishing to Endpoint ("http://host:port")
%% and registers the handler for HostType, publishing to TopicArn.
-spec start(binary(), string(), string(), pos_integer()) -> ok.
start(HostType, Endpoint, TopicArn, PoolSize) ->
    persistent_term:put({?MODULE, topic_arn}, TopicArn),
    {ok, _} = application:ensure_all_started(inets),
    {ok, _} = inets:start(httpc, [{profile, ?PROFILE}]),
    ok = httpc:set_options([{max_sessions, PoolSize}, {max_keep_alive_length, 1000},
                            {keep_alive_timeout, 60000}], ?PROFILE),
    Counters = counters:new(3, [write_concurrency]),
    persistent_term:put(?COUNTERS, Counters),
    Url = Endpoint ++ "/",
    Workers = list_to_tuple([spawn(fun() -> worker(Url, Counters) end)
                             || _ <- lists:seq(1, PoolSize)]),
    persistent_term:put(?WORKERS, Workers),
    _ = gen_hook:add_handlers([{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}]),
    _ = gen_hook:reload_hooks(),
    ok.

-spec stop() -> ok.
stop() ->
    [exit(W, kill) || W <- tuple_to_list(persistent_term:get(?WORKERS))],
    _ = inets:stop(httpc, ?PROFILE),
    ok.

%% @doc Notifications SNS accepted so far.
-spec done() -> non_neg_integer().
done() ->
    counters:get(persistent_term:get(?COUNTERS), ?PUBLISHED).

-spec requests() -> non_neg_integer().
requests() ->
    counters:get(persistent_term:get(?COUNTERS), ?REQUESTS).

%% @doc The hook handler: `in' chat messages with a body to the pm topic.
-spec push_event(map(), map(), map()) -> {ok, map()}.
push_event(HookAcc, #{event := #chat_event{direction = in, from = From, to = To,
                                           packet = Packet}}, _Extra) ->
    case {exml_query:attr(Packet, <<"type">>), exml_query:subelement(Packet, <<"body">>)} of
        {<<"chat">>, #xmlel{} = BodyEl} ->
            Plugin = mod_event_pusher_sns_defaults,
            TopicArn = persistent_term:get({?MODULE, topic_arn}),
            Content = #{from_user_id => Plugin:user_guid(From),
                        to_user_id => Plugin:user_guid(To),
                        message => exml_query:cdata(BodyEl)},
            Attributes = Plugin:message_attributes(TopicArn, From, To, pm, Packet),
            cast({publish, TopicArn, Content, Attributes});
        _ ->
            ok
    end,
    {ok, HookAcc};
push_event(HookAcc, _Params, _Extra) ->
    {ok, HookAcc}.

%%--------------------------------------------------------------------
%% Workers
%%--------------------------------------------------------------------

cast(Msg) ->
    Workers = persistent_term:get(?WORKERS),
    N = counters:get(persistent_term:get(?COUNTERS), ?NEXT),
    counters:add(persistent_term:get(?COUNTERS), ?NEXT, 1),
    element(N rem tuple_size(Workers) + 1, Workers) ! Msg,
    ok.

worker(Url, Counters) ->
    receive
        {publish, TopicArn, Content, _Attributes} ->
            publish(Url, Counters, TopicArn, Content, 2),
            worker(Url, Counters)
    end.

%% One synchronous request per notification; retried as MongooseIM does
%% (publish_retry_count = 2) if it fails, which the benchmark reports.
publish(Url, Counters, TopicArn, Content, Retries) ->
    Body = uri_string:compose_query([{"Action", "Publish"}, {"Version", "2010-03-31"},
                                     {"TopicArn", TopicArn},
                                     {"Message", jiffy:encode(Content)}]),
    Headers = [{"authorization", "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sns/"
                "aws4_request, SignedHeaders=host, Signature=0"}],
    counters:add(Counters, ?REQUESTS, 1),
    case httpc:request(post, {Url, Headers, "application/x-www-form-urlencoded", Body},
                       [{timeout, 10000}], [{body_format, binary}], ?PROFILE) of
        {ok, {{_, 200, _}, _, _}} ->
            counters:add(Counters, ?PUBLISHED, 1);
        Other when Retries > 0 ->
            io:format(standard_error, "publish failed: ~p~n", [Other]),
            publish(Url, Counters, TopicArn, Content, Retries - 1);
        Other ->
            io:format(standard_error, "publish dropped: ~p~n", [Other])
    end.

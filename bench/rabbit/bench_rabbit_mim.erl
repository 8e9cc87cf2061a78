%% MongooseIM's rabbit backend as the benchmark's baseline: a push_event
%% handler at priority 50 that, in the user's process, builds the body map,
%% encodes it with jiffy (metadata merged), computes the routing key and
%% casts it to a worker picked as wpool's default `best_worker' strategy does
%% (the shortest message queue). Written for this benchmark from
%% MongooseIM's documented behaviour (doc/compatibility.md §5); chat events only.
-module(bench_rabbit_mim).

-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([start/3, stop/1, push_event/3, workers/0]).

-define(WORKERS, {?MODULE, workers}).
-define(EXCHANGE, {?MODULE, exchange}).

%% @doc Starts Workers workers in Mode and registers the hook handler.
-spec start(binary(), pos_integer(), bench_rabbit_mim_worker:mode()) -> ok.
start(HostType, Workers, Mode) ->
    Pids = [begin {ok, Pid} = bench_rabbit_mim_worker:start(Mode), Pid end
            || _ <- lists:seq(1, Workers)],
    persistent_term:put(?WORKERS, list_to_tuple(Pids)),
    persistent_term:put(?EXCHANGE, #{name => <<"chat_msg">>, sent_topic => <<"chat_msg_sent">>,
                                     recv_topic => <<"chat_msg_recv">>}),
    _ = gen_hook:add_handlers(hooks(HostType)),
    _ = gen_hook:reload_hooks(),
    ok.

-spec stop(binary()) -> ok.
stop(HostType) ->
    _ = gen_hook:delete_handlers(hooks(HostType)),
    _ = gen_hook:reload_hooks(),
    [gen_server:stop(Pid) || Pid <- workers()],
    ok.

-spec workers() -> [pid()].
workers() ->
    tuple_to_list(persistent_term:get(?WORKERS)).

hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

-spec push_event(map(), map(), map()) -> {ok, map()}.
push_event(HookAcc = #{metadata := Metadata},
           #{event := #chat_event{type = chat, direction = Dir, from = From, to = To,
                                  packet = Packet}}, _Extra) ->
    case exml_query:path(Packet, [{element, <<"body">>}, cdata]) of
        undefined ->
            ok;
        Body ->
            Exchange = #{name := Name} = persistent_term:get(?EXCHANGE),
            Message = #{from_user_id => jid:to_binary(jid:to_lower(From)),
                        to_user_id => jid:to_binary(jid:to_lower(To)),
                        message => Body},
            Json = iolist_to_binary(jiffy:encode(maps:merge(Message, Metadata))),
            gen_server:cast(best_worker(), {publish, Name, routing_key(Dir, From, To, Exchange),
                                            Json})
    end,
    {ok, HookAcc};
push_event(HookAcc, _Params, _Extra) ->
    {ok, HookAcc}.

routing_key(in, From, _To, #{sent_topic := Topic}) ->
    <<(jid:to_binary(jid:to_lus(From)))/binary, ".", Topic/binary>>;
routing_key(out, _From, To, #{recv_topic := Topic}) ->
    <<(jid:to_binary(jid:to_lus(To)))/binary, ".", Topic/binary>>.

%% wpool's best_worker: the worker with the fewest messages waiting.
best_worker() ->
    Workers = persistent_term:get(?WORKERS),
    best_worker(Workers, tuple_size(Workers), element(1, Workers), infinity).

best_worker(_Workers, 0, Best, _BestLen) ->
    Best;
best_worker(Workers, I, Best, BestLen) ->
    Pid = element(I, Workers),
    case process_info(Pid, message_queue_len) of
        {message_queue_len, 0} -> Pid;
        {message_queue_len, Len} when Len < BestLen -> best_worker(Workers, I - 1, Pid, Len);
        _ -> best_worker(Workers, I - 1, Best, BestLen)
    end.

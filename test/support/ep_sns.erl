%% @doc The SNS side of the tests: moto's server (started by
%% scripts/services.sh) with SNS topics, each with an SQS queue subscribed
%% to it, and what those queues received. The subscription uses raw message
%% delivery (the queue gets the published message itself, its attributes as
%% SQS message attributes) or SNS's notification envelope (a JSON document
%% holding `Message' and `MessageAttributes'); moto 5.2.1 loses raw-delivered
%% messages that carry a Binary attribute, so tests of Binary attributes use
%% the envelope. Either way a message reads the same here.
%%
%% A topic can instead have ten queues, each taking the messages whose
%% number (a field of the JSON body) ends in one digit (`shard_by'): moto
%% 5.2.1 counts a queue's messages on each send and three times for each
%% message received, so reading thousands back from one queue takes minutes
%% (quadratic); ten short queues read in parallel keep it to seconds.
%%
%% A registered process owns a Python port (ep_sns_moto.py, boto3) that does
%% the AWS calls; it is not linked to its starter, so it outlives
%% `init_per_suite'. Also here: waiting for this host type's Rust SNS pool to
%% be idle.
-module(ep_sns).

-behaviour(gen_server).

%% Service
-export([start/0, stop/0, endpoint/0, port/0, region/0, account_id/0]).

%% Topics and what arrived
-export([topic/1, topic/2, named_topic/2, delete_topic/1, messages/1, wait_for_messages/3, no_more_messages/1]).

%% The product's SNS pool
-export([pool_stats/1, wait_pool_idle/2]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% `queue_url' is the topic's queue (the first one of a sharded topic).
-type topic() :: #{name := binary(), topic_arn := binary(), queue_url := binary(),
                   queue_urls := [binary(), ...], raw_delivery := boolean()}.
-type topic_opts() :: #{raw_delivery => boolean(), fifo => boolean(), shard_by => binary()}.
%% What a subscriber got: the published message (`body'), decoded as JSON (or
%% `not_json'), and its message attributes as `Name => {DataType, Value}'
%% (a Binary value decoded).
-type message() :: #{body := binary(), json := map() | not_json,
                     attributes := #{binary() => {binary(), binary()}}}.
-export_type([topic/0, topic_opts/0, message/0]).

-define(CALL_TIMEOUT, 30000).
-define(DEFAULT_MOTO_PORT, "4566").

%%====================================================================
%% Service
%%====================================================================

%% @doc Starts moto if it does not answer yet, and the client process.
-spec start() -> ok.
start() ->
    ok = start_moto(),
    case gen_server:start({local, ?MODULE}, ?MODULE, [], []) of
        {ok, _Pid} -> ok;
        {error, {already_started, _Pid}} -> ok
    end.

-spec stop() -> ok.
stop() ->
    case whereis(?MODULE) of
        undefined -> ok;
        _ -> gen_server:stop(?MODULE)
    end.

%% @doc moto's URL, for `sns_host'.
-spec endpoint() -> string().
endpoint() ->
    "http://127.0.0.1:" ++ moto_port().

%% @doc moto's port on 127.0.0.1.
-spec port() -> inet:port_number().
port() ->
    list_to_integer(moto_port()).

%% @doc The region and account that moto's topics live in.
-spec region() -> string().
region() -> "us-east-1".

-spec account_id() -> string().
account_id() -> "123456789012".

%%====================================================================
%% Topics
%%====================================================================

%% @doc A fresh topic `<Prefix>-<unique>' with a queue of the same name
%% subscribed to it with raw delivery.
-spec topic(string() | binary()) -> topic().
topic(Prefix) ->
    topic(Prefix, #{}).

%% @doc `raw_delivery => false': the queue gets SNS's notification envelope;
%% `fifo => true': a FIFO topic and queue (the name ends in `.fifo');
%% `shard_by => Field': ten queues (see the module doc), for messages whose
%% JSON body has Field holding a decimal number.
-spec topic(string() | binary(), topic_opts()) -> topic().
topic(Prefix, Opts) ->
    Suffix = case maps:get(fifo, Opts, false) of
                 true -> ".fifo";
                 false -> ""
             end,
    named_topic([Prefix, "-", integer_to_list(erlang:unique_integer([positive])),
                 "-", os:getpid(), Suffix], maps:remove(fifo, Opts)).

%% @doc The topic `Name' (created unless it exists) with a queue of the same
%% name subscribed to it (e.g. the topics a config names, for the demo).
-spec named_topic(iodata(), #{raw_delivery => boolean(), shard_by => binary()}) -> topic().
named_topic(NameParts, Opts) ->
    Raw = maps:get(raw_delivery, Opts, true),
    Name = iolist_to_binary(NameParts),
    Shards = case Opts of
                 #{shard_by := Field} -> #{shard_by => Field};
                 #{} -> #{}
             end,
    #{<<"topic_arn">> := Arn, <<"queue_urls">> := [Url | _] = Urls} =
        call(Shards#{op => topic_with_queue, name => Name, raw => Raw}),
    #{name => Name, topic_arn => Arn, queue_url => Url, queue_urls => Urls,
      raw_delivery => Raw}.

-spec delete_topic(topic()) -> ok.
delete_topic(#{topic_arn := Arn, queue_urls := Urls}) ->
    true = call(#{op => delete_topic_with_queues, topic_arn => Arn, queue_urls => Urls}),
    ok.

%% @doc What arrived in the topic's queues since they were last read (read
%% messages are deleted).
-spec messages(topic()) -> [message()].
messages(#{queue_urls := Urls, raw_delivery := Raw}) ->
    [message(M, Raw)
     || M <- call(#{op => receive_messages, queue_urls => Urls, max_messages => 1000})].

%% @doc Reads the topic's queue until at least N messages arrived; returns
%% every message read.
-spec wait_for_messages(topic(), non_neg_integer(), timeout()) -> [message()].
wait_for_messages(Topic, N, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_for_messages(Topic, N, Deadline, []).

%% @doc Fails if anything arrived in the topic's queue since it was read.
-spec no_more_messages(topic()) -> ok.
no_more_messages(Topic = #{name := Name}) ->
    case messages(Topic) of
        [] -> ok;
        Unexpected -> error({unexpected_messages, Name, Unexpected})
    end.

%%====================================================================
%% The product's pool
%%====================================================================

%% @doc The counters of HostType's SNS pool, or `undefined' if it does not run.
-spec pool_stats(binary()) -> map() | undefined.
pool_stats(HostType) ->
    case mod_event_pusher_sns:stats(HostType) of
        {ok, Stats} -> Stats;
        {error, not_started} -> undefined
    end.

%% @doc Waits until the pool holds nothing queued or in progress (waiting for
%% a retry counts as in progress): what was submitted reached SNS or was
%% dropped.
-spec wait_pool_idle(binary(), timeout()) -> ok.
wait_pool_idle(HostType, TimeoutMs) ->
    ep_wait:until(fun() -> is_idle(pool_stats(HostType)) end, TimeoutMs,
                  #{name => {sns_pool_idle, HostType}}).

is_idle(#{queued := 0, in_flight := 0}) -> true;
is_idle(_) -> false.

%%====================================================================
%% gen_server: owns the Python port
%%====================================================================

-spec init([]) -> {ok, #{port := port()}}.
init([]) ->
    Python = os:find_executable(os:getenv("PYTHON", "python3")),
    Python =/= false orelse error(python3_not_found),
    Port = open_port({spawn_executable, Python},
                     [{args, [script(), endpoint()]}, {packet, 4}, binary, exit_status]),
    {ok, #{port => Port}}.

-spec handle_call({request, map()}, gen_server:from(), map()) ->
          {reply, term(), map()} | {stop, term(), term(), map()}.
handle_call({request, Request}, _From, State = #{port := Port}) ->
    true = port_command(Port, jiffy:encode(Request)),
    receive
        {Port, {data, Data}} ->
            {reply, jiffy:decode(Data, [return_maps]), State};
        {Port, {exit_status, Status}} ->
            {stop, {moto_client_exited, Status}, {error, {moto_client_exited, Status}}, State}
    after ?CALL_TIMEOUT ->
            {stop, moto_client_timeout, {error, moto_client_timeout}, State}
    end.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({Port, {exit_status, Status}}, State = #{port := Port}) ->
    {stop, {moto_client_exited, Status}, State};
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{port := Port}) ->
    catch port_close(Port),
    ok.

%%====================================================================
%% Helpers
%%====================================================================

call(Request) ->
    case gen_server:call(?MODULE, {request, Request}, ?CALL_TIMEOUT + 5000) of
        #{<<"ok">> := Result} -> Result;
        #{<<"error">> := Text} -> error({moto_request_failed, Request, Text});
        {error, Reason} -> error({moto_request_failed, Request, Reason})
    end.

wait_for_messages(Topic = #{name := Name}, N, Deadline, Acc) ->
    All = Acc ++ messages(Topic),
    case length(All) >= N of
        true ->
            All;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> error({wait_timeout, #{topic => Name, expected => N, got => All}});
                false ->
                    %% A short pause between polls, not a wait for the result.
                    receive after 20 -> ok end,
                    wait_for_messages(Topic, N, Deadline, All)
            end
    end.

message(#{<<"body">> := Body, <<"attributes">> := Attrs} = M, true) ->
    Message = #{body => Body, json => json(Body),
                attributes => maps:map(fun(_Name, #{<<"type">> := Type, <<"value">> := Value}) ->
                                               {Type, attribute_value(Type, Value)}
                                       end, Attrs)},
    %% A FIFO queue's messages: SQS's own attributes (MessageGroupId, ...).
    case M of
        #{<<"system">> := System} -> Message#{system => System};
        #{} -> Message
    end;
message(#{<<"body">> := Envelope}, false) ->
    #{<<"Type">> := <<"Notification">>, <<"Message">> := Body} = Notification = json(Envelope),
    Attrs = maps:get(<<"MessageAttributes">>, Notification, #{}),
    #{body => Body, json => json(Body),
      attributes => maps:map(fun(_Name, #{<<"Type">> := Type, <<"Value">> := Value}) ->
                                     {Type, attribute_value(Type, Value)}
                             end, Attrs)}.

json(Bin) ->
    try jiffy:decode(Bin, [return_maps]) of
        Map when is_map(Map) -> Map;
        _ -> not_json
    catch
        _:_ -> not_json
    end.

attribute_value(<<"Binary", _/binary>>, Base64) -> base64:decode(Base64);
attribute_value(_Type, Value) -> Value.

moto_port() ->
    case os:getenv("MOTO_PORT") of
        false -> ?DEFAULT_MOTO_PORT;
        "" -> ?DEFAULT_MOTO_PORT;
        Port -> Port
    end.

%% The sources, not the build dir: the script is not compiled.
support_dir() ->
    filename:dirname(proplists:get_value(source, ?MODULE:module_info(compile))).

script() ->
    filename:join(support_dir(), "ep_sns_moto.py").

%% scripts/services.sh starts moto unless it answers already. rebar3 runs the
%% suites from a copy of test/ under _build, so the script is looked for in
%% the directories above.
start_moto() ->
    Script = find_up(support_dir(), filename:join("scripts", "services.sh")),
    Bash = os:find_executable("bash"),
    Port = open_port({spawn_executable, Bash},
                     [{args, [Script, "start", "moto"]}, exit_status, stderr_to_stdout, binary]),
    collect_exit(Port, []).

find_up(Dir, Relative) ->
    Candidate = filename:join(Dir, Relative),
    case filelib:is_regular(Candidate) of
        true -> Candidate;
        false ->
            case filename:dirname(Dir) of
                Dir -> error({not_found, Relative});
                Parent -> find_up(Parent, Relative)
            end
    end.

collect_exit(Port, Output) ->
    receive
        {Port, {data, Data}} ->
            collect_exit(Port, [Output, Data]);
        {Port, {exit_status, 0}} ->
            ok;
        {Port, {exit_status, Status}} ->
            error({moto_start_failed, Status, iolist_to_binary(Output)})
    after 180000 ->
            error({moto_start_timeout, iolist_to_binary(Output)})
    end.

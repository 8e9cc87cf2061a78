%% A RabbitMQ worker the way MongooseIM's rabbit pool runs one: a gen_server
%% owning one amqp_client connection and one channel, publishing each message
%% it is cast inside handle_cast. Mode `off' publishes only (MongooseIM's
%% default); `on' waits for the broker's confirm after every publish
%% (MongooseIM with confirms_enabled); `pipelined' puts the channel in
%% confirm mode, casts each publish to the channel and does not wait (acks
%% are counted as they come): the best amqp_client can do with confirms,
%% which MongooseIM does not do.
-module(bench_rabbit_mim_worker).

-behaviour(gen_server).

-include_lib("amqp_client/include/amqp_client.hrl").

-export([start/1, acked/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type mode() :: off | on | pipelined.
-export_type([mode/0]).

-define(PUBLISHED, wpool_global_rabbit_messages_published).
-define(LABELS, #{pool_tag => event_pusher}).

-spec start(mode()) -> {ok, pid()}.
start(Mode) ->
    gen_server:start(?MODULE, Mode, []).

%% @doc Acks received so far (pipelined mode).
-spec acked(pid()) -> non_neg_integer().
acked(Worker) ->
    gen_server:call(Worker, acked, 60000).

init(Mode) ->
    {ok, Connection} = amqp_connection:start(#amqp_params_network{host = "127.0.0.1"}),
    {ok, Channel} = amqp_connection:open_channel(Connection),
    case Mode of
        off ->
            ok;
        _ ->
            #'confirm.select_ok'{} = amqp_channel:call(Channel, #'confirm.select'{}),
            Mode =:= pipelined andalso amqp_channel:register_confirm_handler(Channel, self())
    end,
    {ok, #{mode => Mode, connection => Connection, channel => Channel, acked => 0}}.

handle_call(acked, _From, State = #{acked := Acked}) ->
    {reply, Acked, State}.

handle_cast({publish, Exchange, RoutingKey, Json}, State = #{channel := Channel, mode := Mode}) ->
    Method = #'basic.publish'{exchange = Exchange, routing_key = RoutingKey},
    Msg = #amqp_msg{payload = Json},
    T0 = erlang:monotonic_time(),
    Result = case Mode of
                 off ->
                     ok = amqp_channel:call(Channel, Method, Msg),
                     true;
                 on ->
                     ok = amqp_channel:call(Channel, Method, Msg),
                     amqp_channel:wait_for_confirms(Channel);
                 pipelined ->
                     %% Not MongooseIM's call: the channel queues it and the
                     %% worker moves on at once.
                     ok = amqp_channel:cast(Channel, Method, Msg),
                     true
             end,
    TimeUs = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
    %% MongooseIM measures each publish into its wpool event (size is the
    %% external term size of the #amqp_msg{} there).
    Measurements = case Result of
                       true -> #{count => 1, time => TimeUs,
                                 size => byte_size(term_to_binary(Msg)), payload => Msg};
                       false -> #{failed => 1, payload => Msg};
                       timeout -> #{timeout => 1, payload => Msg}
                   end,
    mongoose_instrument:execute(?PUBLISHED, ?LABELS, Measurements),
    {noreply, State}.

handle_info(#'basic.ack'{delivery_tag = Tag, multiple = Multiple}, State = #{acked := Acked}) ->
    {noreply, State#{acked := acked(Acked, Tag, Multiple)}};
handle_info(_Other, State) ->
    {noreply, State}.

terminate(_Reason, #{connection := Connection}) ->
    catch amqp_connection:close(Connection),
    ok.

%% Delivery tags count publishes on the channel from 1.
acked(_Acked, Tag, true) -> Tag;
acked(Acked, _Tag, false) -> Acked + 1.

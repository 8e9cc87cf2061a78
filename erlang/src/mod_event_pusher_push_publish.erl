%% @doc Sending one notification to the services a plugin chose (doc/compatibility.md
%% §7). Each service is first sorted: a virtual pubsub host of the
%% recipient's domain is served by the `push_notifications' hook, any other
%% by a pubsub publish IQ, routed and answered in a `pusher_push' worker.
-module(mod_event_pusher_push_publish).

-include("mongoose.hrl").
-include("jlib.hrl").

-export([send/3, on_reply/2]).

-type service() :: mod_event_pusher_push:publish_service().
-type class() :: {hook, service()} | {pubsub, service()}.
%% What a publish reply is matched against, built before the IQ is sent.
-type reply_context() :: #{host_type := mongooseim:host_type(),
                           recipient := jid:jid(),
                           pubsub := jid:jid(),
                           node := mod_event_pusher_push:pubsub_node()}.

-define(SUMMARY_NS, <<"urn:xmpp:push:summary">>).

%% @doc Notifies every service of the accumulator's recipient.
-spec send(mongoose_acc:t(), mod_event_pusher_push_plugin:push_payload(), [service()]) -> ok.
send(Acc, Payload, Services) ->
    HostType = mongoose_acc:host_type(Acc),
    Recipient = mongoose_acc:to_jid(Acc),
    Classes = [classify(HostType, Recipient, Service) || Service <- Services],
    lists:foreach(fun(Class) -> deliver(Class, Acc, Recipient, Payload) end, Classes).

%% @doc Runs in a worker with the reply to a publish IQ (or `timeout').
%% A cancel error means the service will never take this node: drop it.
%% Other errors and timeouts are logged and counted (ours; MongooseIM is
%% silent about them).
-spec on_reply(reply_context(), #iq{} | timeout) -> ok.
on_reply(#{host_type := HostType} = Ctx, #iq{type = result}) ->
    mod_event_pusher_push:count(HostType, published, about(Ctx));
on_reply(#{host_type := HostType} = Ctx, timeout) ->
    ?LOG_WARNING((about(Ctx))#{what => push_publish_timeout, host_type => HostType}),
    mod_event_pusher_push:count(HostType, failed, (about(Ctx))#{reason => timeout});
on_reply(#{host_type := HostType} = Ctx, #iq{type = error, sub_el = Content}) ->
    {Type, Condition} = describe_error(Content),
    case Type of
        <<"cancel">> ->
            drop_node(Ctx, Condition);
        _ ->
            ?LOG_WARNING((about(Ctx))#{what => push_publish_failed, host_type => HostType,
                                       error_type => Type, reason => Condition}),
            mod_event_pusher_push:count(HostType, failed, (about(Ctx))#{reason => error_reply})
    end.

%%--------------------------------------------------------------------
%% Sorting and delivering
%%--------------------------------------------------------------------

-spec classify(mongooseim:host_type(), jid:jid(), service()) -> class().
classify(HostType, #jid{lserver = UserDomain}, {#jid{lserver = ServiceDomain}, _, _} = S) ->
    case mod_event_pusher_push:is_virtual_pubsub_host(HostType, UserDomain, ServiceDomain) of
        true -> {hook, S};
        false -> {pubsub, S}
    end.

-spec deliver(class(), mongoose_acc:t(), jid:jid(),
              mod_event_pusher_push_plugin:push_payload()) -> ok.
deliver({hook, {PubSub, Node, Options}}, Acc, Recipient, Payload) ->
    HostType = mongoose_acc:host_type(Acc),
    Ctx = #{host_type => HostType, recipient => Recipient, pubsub => PubSub, node => Node},
    %% The hook's handlers may read which service is addressed.
    Tagged = mongoose_acc:set(push_notifications, pubsub_jid, PubSub, Acc),
    Notifications = [maps:from_list(Payload)],
    case mongoose_hooks:push_notifications(HostType, Tagged, Notifications, Options) of
        {error, device_not_registered} ->
            drop_node(Ctx, device_not_registered);
        {error, Why} ->
            ?LOG_WARNING((about(Ctx))#{what => push_notifications_hook_failed,
                                       host_type => HostType, reason => Why}),
            mod_event_pusher_push:count(HostType, failed, #{reason => hook_error});
        _Delivered ->
            mod_event_pusher_push:count(HostType, published, about(Ctx))
    end;
deliver({pubsub, {PubSub, Node, Options}}, Acc, Recipient, Payload) ->
    HostType = mongoose_acc:host_type(Acc),
    Ctx = #{host_type => HostType, recipient => Recipient, pubsub => PubSub, node => Node},
    IQ = #iq{type = set, sub_el = [pubsub_el(Node, Payload, Options)]},
    %% Sent from the recipient's domain, so that the reply comes back here.
    Sender = jid:make_noprep(<<>>, Recipient#jid.lserver, <<>>),
    RouteAcc = mongoose_acc:new(#{location => #{mfa => {?MODULE, deliver, 4}, line => ?LINE,
                                                file => ?FILE},
                                  host_type => HostType,
                                  lserver => Recipient#jid.lserver,
                                  element => jlib:iq_to_xml(IQ),
                                  from_jid => Recipient, to_jid => PubSub}),
    WhenAnswered = fun(_ReplyFrom, _ReplyTo, ReplyAcc, Reply) ->
                           mod_event_pusher_push:cast(HostType, fun ?MODULE:on_reply/2,
                                                      [Ctx, Reply]),
                           ReplyAcc
                   end,
    mod_event_pusher_push:cast(HostType, fun ejabberd_local:route_iq/6,
                               [Sender, PubSub, RouteAcc, IQ, WhenAnswered, reply_timeout()]).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Counted as `disabled' only once the node is really gone from storage.
-spec drop_node(reply_context(), term()) -> ok.
drop_node(#{host_type := HostType, recipient := User, pubsub := PubSub, node := Node} = Ctx,
          Why) ->
    case mod_event_pusher_push:disable_node(HostType, User, PubSub, Node) of
        ok ->
            ?LOG_WARNING((about(Ctx))#{what => push_node_disabled, host_type => HostType,
                                       user => jid:to_binary(jid:to_bare(User)),
                                       reason => Why}),
            mod_event_pusher_push:count(HostType, disabled, about(Ctx));
        {error, StoreError} ->
            ?LOG_ERROR((about(Ctx))#{what => push_node_disable_failed, host_type => HostType,
                                     reason => StoreError})
    end.

about(#{pubsub := PubSub, node := Node}) ->
    #{pubsub_jid => jid:to_binary(PubSub), node => Node}.

%% The test suites shorten MongooseIM's IQ timeout through the app env.
reply_timeout() ->
    application:get_env(mongoose_event_pusher, push_iq_timeout, undefined).

%% <pubsub><publish node=N><item><notification>summary</notification></item>
%% </publish>[<publish-options>form</publish-options>]</pubsub>
pubsub_el(Node, Payload, Options) ->
    Summary = el(<<"notification">>, #{<<"xmlns">> => ?NS_PUSH},
                 [submitted(?SUMMARY_NS, Payload)]),
    Publish = el(<<"publish">>, #{<<"node">> => Node}, [el(<<"item">>, #{}, [Summary])]),
    Extra = case maps:size(Options) of
                0 -> [];
                _ -> [el(<<"publish-options">>, #{},
                         [submitted(?NS_PUBSUB_PUB_OPTIONS, maps:to_list(Options))])]
            end,
    el(<<"pubsub">>, #{<<"xmlns">> => ?NS_PUBSUB}, [Publish | Extra]).

el(Name, Attrs, Children) ->
    #xmlel{name = Name, attrs = Attrs, children = Children}.

submitted(FormType, Pairs) ->
    Spec = #{type => <<"submit">>, ns => FormType},
    mongoose_data_forms:form(Spec#{fields => lists:map(fun single_valued/1, Pairs)}).

single_valued({Var, Value}) ->
    #{var => Var, values => [Value]}.

%% The type and condition of the `<error/>' in a reply's content.
describe_error(Content) ->
    Errors = [E || #xmlel{name = <<"error">>} = E <- lists:flatten([Content])],
    case Errors of
        [#xmlel{children = Inner} = Error | _] ->
            Conditions = [C || #xmlel{name = C, attrs = #{<<"xmlns">> := ?NS_STANZAS}} <- Inner],
            {exml_query:attr(Error, <<"type">>), first_or_undefined(Conditions)};
        [] ->
            {undefined, undefined}
    end.

first_or_undefined([First | _]) -> First;
first_or_undefined([]) -> undefined.

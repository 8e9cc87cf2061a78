%% @doc Push subscriptions in mnesia, in MongooseIM's table and record shape
%% (table `push_subscription', a bag keyed by the user's `{LUser, LServer}'),
%% so subscriptions a node stored with MongooseIM's module stay valid.
-module(mod_event_pusher_push_mnesia).
-behaviour(mod_event_pusher_push_backend).

-export([init/2, enable/5, disable/2, disable/4, get_publish_services/2, remove_domain/2]).

-record(push_subscription, {user_jid :: {jid:luser(), jid:lserver()},
                            pubsub_jid :: jid:jid(),
                            pubsub_node :: mod_event_pusher_push:pubsub_node(),
                            form :: mod_event_pusher_push:form()}).

%% @doc Uses the table when it exists (e.g. written by MongooseIM), else
%% creates it as MongooseIM does.
-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(_HostType, _Opts) ->
    mongoose_mnesia:create_table(push_subscription,
                                 [{disc_copies, [node()]}, {type, bag},
                                  {attributes, record_info(fields, push_subscription)}]),
    ok.

-spec enable(mongooseim:host_type(), jid:jid(), jid:jid(), mod_event_pusher_push:pubsub_node(),
             mod_event_pusher_push:form()) -> ok | {error, term()}.
enable(_HostType, User, PubSub, Node, Form) ->
    Record = #push_subscription{user_jid = jid:to_lus(User), pubsub_jid = PubSub,
                                pubsub_node = Node, form = Form},
    %% One transaction: the old J+N entry never coexists with the new one.
    transaction(fun() ->
                        delete_matching(jid:to_lus(User), PubSub, Node),
                        mnesia:write(Record)
                end).

-spec disable(mongooseim:host_type(), jid:jid()) -> ok | {error, term()}.
disable(_HostType, User) ->
    transaction(fun() -> mnesia:delete({push_subscription, jid:to_lus(User)}) end).

-spec disable(mongooseim:host_type(), jid:jid(), jid:jid(),
              mod_event_pusher_push:pubsub_node() | undefined) -> ok | {error, term()}.
disable(_HostType, User, PubSub, Node) ->
    transaction(fun() -> delete_matching(jid:to_lus(User), PubSub, Node) end).

-spec get_publish_services(mongooseim:host_type(), jid:jid()) ->
          {ok, [mod_event_pusher_push:publish_service()]} | {error, term()}.
get_publish_services(_HostType, User) ->
    try mnesia:dirty_read(push_subscription, jid:to_lus(User)) of
        Records ->
            {ok, [{PubSub, Node, Form}
                  || #push_subscription{pubsub_jid = PubSub, pubsub_node = Node,
                                        form = Form} <- Records]}
    catch
        exit:Reason -> {error, Reason}
    end.

-spec remove_domain(mongooseim:host_type(), jid:lserver()) -> ok.
remove_domain(_HostType, Domain) ->
    Pattern = #push_subscription{user_jid = {'_', Domain}, _ = '_'},
    ok = transaction(fun() ->
                             lists:foreach(fun mnesia:delete_object/1,
                                           mnesia:match_object(Pattern))
                     end).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Inside a transaction: the user's entries for PubSub and Node (every node
%% when Node is undefined).
delete_matching(Key, PubSub, Node) ->
    [mnesia:delete_object(Record)
     || #push_subscription{pubsub_jid = RecPubSub, pubsub_node = RecNode} = Record
            <- mnesia:read(push_subscription, Key),
        RecPubSub =:= PubSub,
        Node =:= undefined orelse RecNode =:= Node],
    ok.

-spec transaction(fun(() -> term())) -> ok | {error, term()}.
transaction(F) ->
    case mnesia:transaction(F) of
        {atomic, _} -> ok;
        {aborted, Reason} -> {error, Reason}
    end.

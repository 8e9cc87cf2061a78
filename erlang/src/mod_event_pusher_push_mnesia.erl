%% @doc Push subscriptions in mnesia, in MongooseIM's table and record shape
%% (table `push_subscription', a bag keyed by the user's `{LUser, LServer}'),
%% so that subscriptions stored by MongooseIM's module stay valid.
-module(mod_event_pusher_push_mnesia).
-behaviour(mod_event_pusher_push_backend).

-export([init/2, enable/5, disable/2, disable/4, get_publish_services/2, remove_domain/2]).

%% '_' in every field: the same record is the match pattern of mnesia's
%% match_object.
-record(push_subscription, {user_jid :: {jid:luser(), jid:lserver()} | {'_', jid:lserver()} | '_',
                            pubsub_jid :: jid:jid() | '_',
                            pubsub_node :: mod_event_pusher_push:pubsub_node() | '_',
                            form :: mod_event_pusher_push:form() | [{binary(), binary()}] | '_'}).

-define(TAB, push_subscription).

%% @doc An existing table (e.g. one MongooseIM wrote) is used as it is.
-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(_HostType, _Opts) ->
    Fields = record_info(fields, ?TAB),
    _ = mongoose_mnesia:create_table(?TAB, lists:append([[{type, bag}],
                                                         [{disc_copies, [node()]}],
                                                         [{attributes, Fields}]])),
    ok.

%% @doc Replaces, in one transaction, any entry for the same service and node.
-spec enable(mongooseim:host_type(), jid:jid(), jid:jid(), mod_event_pusher_push:pubsub_node(),
             mod_event_pusher_push:form()) -> ok | {error, term()}.
enable(_HostType, User, PubSub, Node, Form) ->
    Slot = selector(User, PubSub, Node),
    in_transaction(fun() ->
                           remove_all(Slot),
                           mnesia:write(Slot#push_subscription{form = Form})
                   end).

-spec disable(mongooseim:host_type(), jid:jid()) -> ok | {error, term()}.
disable(_HostType, User) ->
    in_transaction(fun() -> mnesia:delete({?TAB, jid:to_lus(User)}) end).

%% @doc Node `undefined' stands for every node of the service.
-spec disable(mongooseim:host_type(), jid:jid(), jid:jid(),
              mod_event_pusher_push:pubsub_node() | undefined) -> ok | {error, term()}.
disable(_HostType, User, PubSub, Node) ->
    in_transaction(fun() -> remove_all(selector(User, PubSub, Node)) end).

%% @doc Forms stored by old versions as key-value lists come back as maps.
-spec get_publish_services(mongooseim:host_type(), jid:jid()) ->
          {ok, [mod_event_pusher_push:publish_service()]} | {error, term()}.
get_publish_services(_HostType, User) ->
    Pattern = #push_subscription{user_jid = jid:to_lus(User), _ = '_'},
    case catch mnesia:dirty_match_object(?TAB, Pattern) of
        Entries when is_list(Entries) -> {ok, lists:map(fun as_service/1, Entries)};
        {'EXIT', Why} -> {error, Why}
    end.

-spec remove_domain(mongooseim:host_type(), jid:lserver()) -> ok.
remove_domain(_HostType, Domain) ->
    OfDomain = #push_subscription{user_jid = {'_', Domain}, _ = '_'},
    ok = in_transaction(fun() -> remove_all(OfDomain) end).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% A match pattern for the user's entries of one service (and node);
%% `undefined' matches any node.
selector(User, PubSub, undefined) ->
    selector(User, PubSub, '_');
selector(User, PubSub, Node) ->
    Any = #push_subscription{_ = '_'},
    Any#push_subscription{user_jid = jid:to_lus(User), pubsub_jid = PubSub, pubsub_node = Node}.

remove_all(Pattern) ->
    lists:foreach(fun mnesia:delete_object/1, mnesia:match_object(Pattern)).

as_service(#push_subscription{pubsub_jid = PubSub, pubsub_node = Node, form = Form}) ->
    {PubSub, Node, form_map(Form)}.

form_map(Form) when is_list(Form) -> maps:from_list(Form);
form_map(Form) -> Form.

-spec in_transaction(fun(() -> term())) -> ok | {error, term()}.
in_transaction(Work) ->
    Outcome = mnesia:transaction(Work),
    if
        element(1, Outcome) =:= atomic -> ok;
        true -> {error, element(2, Outcome)}
    end.

%% @doc Push subscriptions in a relational database (`backend = "rdbms"'),
%% in MongooseIM's table `event_pusher_push_subscription' with its
%% prepared queries and encodings (doc/compatibility.md §7), so that the
%% subscriptions a site already stored there stay valid.
%%
%% One row per (owner, node, service): `owner_jid' the user's bare JID,
%% `pubsub_jid' the service's JID, both as text; `form' the publish options
%% as a JSON object; `created_at' in microseconds. Only `mongoose_rdbms' is
%% called, so the queries run on whatever database the host type's
%% `[outgoing_pools.rdbms.default]' pool (or the global one) uses. As in
%% MongooseIM, a failing query raises (`execute_successfully'): the caller
%% (an IQ handler, a hook) fails with it.
-module(mod_event_pusher_push_rdbms).
-behaviour(mod_event_pusher_push_backend).

-export([init/2, enable/5, disable/2, disable/4, get_publish_services/2, remove_domain/2]).

-define(TABLE, event_pusher_push_subscription).

%%--------------------------------------------------------------------
%% Store callbacks
%%--------------------------------------------------------------------

%% @doc Prepares the six queries (once per node; preparing again is a no-op).
-spec init(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
init(_HostType, _Opts) ->
    lists:foreach(fun({Name, Fields, SQL}) ->
                          _ = mongoose_rdbms:prepare(Name, ?TABLE, Fields, SQL)
                  end, queries()),
    ok.

%% @doc Replaces the row of the same owner, node and service: a delete,
%% then an insert (MongooseIM's two statements, not a transaction).
-spec enable(mongooseim:host_type(), jid:jid(), jid:jid(), mod_event_pusher_push:pubsub_node(),
             mod_event_pusher_push:form()) -> ok | {error, term()}.
enable(HostType, User, PubSub, Node, Form) ->
    Owner = owner(User),
    Service = jid:to_binary(PubSub),
    _ = execute(HostType, event_pusher_push_delete_node, [Owner, Node, Service]),
    Row = [Owner, Node, Service, jiffy:encode(Form), os:system_time(microsecond)],
    case execute(HostType, event_pusher_push_insert, Row) of
        {updated, 1} -> ok;
        Other -> Other
    end.

-spec disable(mongooseim:host_type(), jid:jid()) -> ok | {error, term()}.
disable(HostType, User) ->
    _ = execute(HostType, event_pusher_push_delete, [owner(User)]),
    ok.

%% @doc Node `undefined' stands for every node of the service.
-spec disable(mongooseim:host_type(), jid:jid(), jid:jid(),
              mod_event_pusher_push:pubsub_node() | undefined) -> ok | {error, term()}.
disable(HostType, User, PubSub, undefined) ->
    _ = execute(HostType, event_pusher_push_delete_pubsub_jid,
                [owner(User), jid:to_binary(PubSub)]),
    ok;
disable(HostType, User, PubSub, Node) ->
    _ = execute(HostType, event_pusher_push_delete_node,
                [owner(User), Node, jid:to_binary(PubSub)]),
    ok.

-spec get_publish_services(mongooseim:host_type(), jid:jid()) ->
          {ok, [mod_event_pusher_push:publish_service()]} | {error, term()}.
get_publish_services(HostType, User) ->
    {selected, Rows} = execute(HostType, event_pusher_push_select, [owner(User)]),
    {ok, [as_service(Row) || Row <- Rows]}.

%% @doc Every row whose owner is a user of the domain: `%@<domain>', with
%% `%', `_' and `$' in the domain escaped (`ESCAPE '$'').
-spec remove_domain(mongooseim:host_type(), jid:lserver()) -> ok.
remove_domain(HostType, Domain) ->
    Pattern = <<"%@", (mongoose_rdbms:escape_prepared_like(Domain))/binary>>,
    _ = execute(HostType, event_pusher_push_delete_domain, [Pattern]),
    ok.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% {Name, Fields (the parameters' columns), SQL}
queries() ->
    From = <<"FROM event_pusher_push_subscription ">>,
    Delete = <<"DELETE ", From/binary>>,
    [{event_pusher_push_insert, [owner_jid, node, pubsub_jid, form, created_at],
      <<"INSERT INTO event_pusher_push_subscription VALUES (?, ?, ?, ?, ?)">>},
     {event_pusher_push_select, [owner_jid],
      <<"SELECT node, pubsub_jid, form ", From/binary, "WHERE owner_jid = ?">>},
     {event_pusher_push_delete, [owner_jid],
      <<Delete/binary, "WHERE owner_jid = ?">>},
     {event_pusher_push_delete_pubsub_jid, [owner_jid, pubsub_jid],
      <<Delete/binary, "WHERE owner_jid = ? AND pubsub_jid = ?">>},
     {event_pusher_push_delete_node, [owner_jid, node, pubsub_jid],
      <<Delete/binary, "WHERE owner_jid = ? AND node = ? AND pubsub_jid = ?">>},
     {event_pusher_push_delete_domain, [owner_jid],
      <<Delete/binary, "WHERE owner_jid LIKE ? ESCAPE '$'">>}].

execute(HostType, Query, Params) ->
    mongoose_rdbms:execute_successfully(HostType, Query, Params).

owner(User) ->
    jid:to_bare_binary(User).

as_service({Node, PubSub, Form}) ->
    {jid:from_binary(PubSub), Node, jiffy:decode(Form, [return_maps])}.

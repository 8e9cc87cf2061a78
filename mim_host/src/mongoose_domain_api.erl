%% @doc The test host's `mongoose_domain_api': which host type serves a
%% domain. Static domains (`hosts') are their own host type; dynamic domains
%% of a `host_types' entry are added with `insert_domain/2' and removed with
%% `delete_domain/2', which runs the `remove_domain' hook as MongooseIM does.
%% The domains live in a public ETS table owned by ejabberd_sup.
-module(mongoose_domain_api).

-export([insert_domain/2, delete_domain/2, get_domain_host_type/1, get_host_type/1]).
%% test host: ejabberd_sup creates the table when it starts
-export([ensure_table/0]).

-type remove_domain_acc() :: #{failed := [module()]}.
-type domain_info() :: #{domain := jid:lserver(), host_type := mongooseim:host_type()}.
-export_type([remove_domain_acc/0]).

-define(TABLE, mongoose_domain_api_dynamic).

%% @doc Adds a dynamic domain; `{error, unknown_host_type}' unless the host
%% type is configured under `host_types'. Local routing to it starts.
-spec insert_domain(jid:lserver(), mongooseim:host_type()) ->
          {ok, domain_info()} | {error, unknown_host_type | duplicate}.
insert_domain(Domain, HostType) ->
    case lists:member(HostType, mongoose_config:get_opt(host_types, [])) of
        false ->
            {error, unknown_host_type};
        true ->
            ensure_table(),
            case ets:insert_new(?TABLE, {Domain, HostType}) of
                true ->
                    ok = ejabberd_local:register_host(Domain),
                    {ok, #{domain => Domain, host_type => HostType}};
                false ->
                    {error, duplicate}
            end
    end.

%% @doc Runs `remove_domain' (every handler must succeed), then forgets the domain.
-spec delete_domain(jid:lserver(), mongooseim:host_type()) ->
          {ok, domain_info()} | {error, not_found | wrong_host_type}.
delete_domain(Domain, HostType) ->
    case get_domain_host_type(Domain) of
        {ok, HostType} ->
            #{failed := []} = mongoose_hooks:remove_domain(HostType, Domain),
            ensure_table(),
            ets:delete(?TABLE, Domain),
            ok = ejabberd_local:unregister_host(Domain),
            {ok, #{domain => Domain, host_type => HostType}};
        {ok, _Other} ->
            {error, wrong_host_type};
        {error, not_found} ->
            {error, not_found}
    end.

-spec get_domain_host_type(jid:lserver()) -> {ok, mongooseim:host_type()} | {error, not_found}.
get_domain_host_type(Domain) ->
    case lists:member(Domain, mongoose_config:get_opt(hosts, [])) of
        true ->
            {ok, Domain};
        false ->
            case ets:whereis(?TABLE) =/= undefined andalso ets:lookup(?TABLE, Domain) of
                [{Domain, HostType}] -> {ok, HostType};
                _ -> {error, not_found}
            end
    end.

%% @doc The host type of a (nameprepped) domain.
-spec get_host_type(jid:lserver()) -> {ok, mongooseim:host_type()} | {error, not_found}.
get_host_type(Domain) ->
    get_domain_host_type(Domain).

-spec ensure_table() -> ok.
ensure_table() ->
    {ok, _} = ejabberd_sup:ensure_started(),
    ejabberd_sup:create_ets_table(?TABLE, [named_table, public, set, {read_concurrency, true}]).

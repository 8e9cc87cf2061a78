%% @doc Test host: the parts of MongooseIM's config that our product does not
%% use, accepted with light processing so that operators' mongooseim.toml
%% files load.
%%
%% Names are checked where MongooseIM 6.8 fixes them: the keys of `listen',
%% `auth', `services', `instrumentation' and `s2s', and the names of the
%% modules MongooseIM has. Below those names, values are taken as TOML gives
%% them (checked to be a table or an array where MongooseIM requires one) and
%% not validated further. None of these parts reach the processed options,
%% except the connection of an outgoing pool whose type is not emulated, which
%% is kept unvalidated in its pool entry.
-module(mongoose_config_spec_unemulated).

%% sections
-export([listen/0,
         auth/0,
         services/0,
         instrumentation/0,
         s2s/0,
         routing_modules/0,
         pool_connection/0,
         module/0]).

%% MongooseIM's modules
-export([mongooseim_modules/0,
         is_mongooseim_module/1]).

%% callbacks of the `process' steps
-export([process_raw/1,
         process_module/2]).

-include_lib("kernel/include/logger.hrl").
-include("mongoose_config_spec.hrl").

%% path: listen
-spec listen() -> mongoose_config_spec:config_section().
listen() ->
    Types = [<<"c2s">>, <<"s2s">>, <<"component">>, <<"http">>],
    %% every listener needs a port in MongooseIM
    Listener = (raw_table())#section{required = [<<"port">>]},
    #section{items = maps:from_list([{Type, #list{items = Listener}} || Type <- Types]),
             wrap = remove}.

%% path: (host_config[].)auth
-spec auth() -> mongoose_config_spec:config_section().
auth() ->
    Methods = [anonymous, dummy, external, http, internal, jwt, ldap, pki, rdbms],
    MethodSections = maps:from_list([{atom_to_binary(M, utf8), raw_table()} || M <- Methods]),
    %% MongooseIM accepts a method whose ejabberd_auth_<Method> module exists
    MethodNames = #list{items = #option{type = atom, validate = {enum, Methods}}},
    #section{items = MethodSections#{<<"methods">> => MethodNames,
                                     <<"password">> => raw_table(),
                                     <<"sasl_external">> => raw_list(),
                                     <<"sasl_external_common_name">> => raw_table(),
                                     <<"sasl_mechanisms">> => raw_list(),
                                     <<"max_users_per_domain">> => raw()},
             wrap = remove}.

%% path: services
-spec services() -> mongoose_config_spec:config_section().
services() ->
    Services = [<<"service_bosh">>, <<"service_traffic">>, <<"service_domain_db">>,
                <<"service_mongoose_system_metrics">>],
    #section{items = maps:from_list([{S, raw_table()} || S <- Services]),
             wrap = remove}.

%% path: instrumentation
-spec instrumentation() -> mongoose_config_spec:config_section().
instrumentation() ->
    #section{items = #{<<"prometheus">> => raw_table(),
                       <<"exometer">> => raw_table(),
                       <<"log">> => raw_table(),
                       <<"probe_interval">> => #option{type = integer, validate = positive}},
             wrap = remove}.

%% path: (host_config[].)s2s
-spec s2s() -> mongoose_config_spec:config_section().
s2s() ->
    #section{items = #{<<"default_policy">> => #option{type = atom,
                                                       validate = {enum, [allow, deny]}},
                       <<"host_policy">> => #list{items = raw_table()},
                       <<"shared">> => #option{type = binary, validate = non_empty},
                       <<"outgoing">> => raw_table()},
             wrap = remove}.

%% path: general.routing_modules
%% MongooseIM turns the names into router handlers; the test host routes
%% nothing, so the list is only checked.
-spec routing_modules() -> mongoose_config_spec:config_list().
routing_modules() ->
    #list{items = #option{type = atom, validate = non_empty}, wrap = remove}.

%% path: (host_config[].)outgoing_pools.*.*.connection, for types other than
%% http and rabbit: kept as given, keys as atoms.
-spec pool_connection() -> mongoose_config_spec:config_section().
pool_connection() ->
    #section{items = #{default => #option{type = toml, process = fun ?MODULE:process_raw/1}},
             include = always}.

%% path: (host_config[].)modules.*, for a MongooseIM module not loadable here:
%% any options, then dropped with a warning (it must not be started).
-spec module() -> mongoose_config_spec:config_section().
module() ->
    #section{items = #{default => raw()},
             process = fun ?MODULE:process_module/2,
             wrap = remove}.

%% @doc The modules of MongooseIM 6.8 (those of its src/ tree that are
%% gen_mod modules; most take options through config_spec/0, the others are
%% accepted without options).
-spec mongooseim_modules() -> [module()].
mongooseim_modules() ->
    [mod_adhoc, mod_amp, mod_auth_token, mod_bind2, mod_blocking, mod_blocklist,
     mod_broadcast, mod_cache_users, mod_caps, mod_carboncopy, mod_csi, mod_disco,
     mod_domain_isolation, mod_dynamic_domains_test, mod_event_pusher,
     mod_event_pusher_http, mod_event_pusher_push, mod_event_pusher_rabbit,
     mod_event_pusher_sns, mod_extdisco, mod_external_filter, mod_fast_auth_token,
     mod_global_distrib, mod_global_distrib_bounce, mod_global_distrib_disco,
     mod_global_distrib_hosts_refresher, mod_global_distrib_mapping,
     mod_global_distrib_receiver, mod_global_distrib_utils, mod_http_upload, mod_inbox,
     mod_keystore, mod_last, mod_mam, mod_mam_cache_user, mod_mam_cassandra_arch,
     mod_mam_cassandra_prefs, mod_mam_elasticsearch_arch, mod_mam_mnesia_prefs,
     mod_mam_muc, mod_mam_muc_cassandra_arch, mod_mam_muc_elasticsearch_arch,
     mod_mam_muc_rdbms_arch, mod_mam_muc_rdbms_arch_async, mod_mam_pm,
     mod_mam_rdbms_arch, mod_mam_rdbms_arch_async, mod_mam_rdbms_prefs,
     mod_mam_rdbms_user, mod_muc, mod_muc_light, mod_muc_light_cache, mod_offline,
     mod_offline_chatmarkers, mod_offline_stub, mod_ping, mod_presence, mod_privacy,
     mod_private, mod_pubsub, mod_pubsub_old, mod_push_service_mongoosepush,
     mod_register, mod_roster, mod_sasl2, mod_shared_roster_ldap, mod_sic,
     mod_smart_markers, mod_stanzaid, mod_stream_management, mod_time, mod_vcard,
     mod_version].

-spec is_mongooseim_module(module()) -> boolean().
is_mongooseim_module(Module) ->
    lists:member(Module, mongooseim_modules()).

%% Process callbacks

%% @doc A TOML value with the keys of its tables as atoms.
-spec process_raw(term()) -> term().
process_raw(M) when is_map(M) ->
    maps:from_list([{binary_to_atom(K, utf8), process_raw(V)} || {K, V} <- maps:to_list(M)]);
process_raw(L) when is_list(L) ->
    [process_raw(V) || V <- L];
process_raw(V) ->
    V.

%% @doc Logs that a module section is ignored; its options are not logged
%% (they may hold credentials).
-spec process_module(mongoose_config_parser_toml:path(), map()) -> map().
process_module([Name | _] = Path, Opts) ->
    ?LOG_WARNING(#{what => module_not_emulated,
                   module => binary_to_atom(Name, utf8),
                   host_type => host_type(Path),
                   text => <<"MongooseIM module not in the test host: "
                             "its section is accepted and the module is not started">>}),
    Opts.

host_type(Path) ->
    case lists:reverse(Path) of
        [<<"host_config">>, {host, HostType} | _] -> HostType;
        _ -> global
    end.

%% Nodes taking TOML values as they come

raw() ->
    #option{type = toml}.

raw_table() ->
    #section{items = #{default => raw()}}.

raw_list() ->
    #list{items = raw()}.

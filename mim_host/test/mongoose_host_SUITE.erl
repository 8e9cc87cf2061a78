%% @doc The MongooseIM host emulation in mim_host/src behaves as MongooseIM:
%% gen_hook, gen_mod, gen_mod_deps, mongoose_modules, mongoose_hooks,
%% mongoose_acc, jid, exml, exml_query, mongoose_instrument,
%% instrument_helper and mongoose_wpool.
-module(mongoose_host_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("eunit/include/eunit.hrl").
-include("jlib.hrl").
-include("mongoose.hrl").

-compile([export_all, nowarn_export_all]).

-define(STATIC, <<"static.test">>).
-define(DYNAMIC, <<"dynamic type">>).
-define(HOOK, host_fixture_hook).
-define(EVENT, host_fixture_event).

%%--------------------------------------------------------------------
%% Suite
%%--------------------------------------------------------------------

all() ->
    [{group, gen_hook}, {group, gen_mod}, {group, mongoose_modules},
     {group, mongoose_hooks}, {group, mongoose_acc}, {group, jid}, {group, exml},
     {group, instrument}, {group, mongoose_wpool}, {group, ejabberd_sup}].

groups() ->
    [{gen_hook, [], [handlers_run_in_ascending_priority_order,
                     handlers_with_equal_priority_run_in_registration_order,
                     stop_result_skips_the_remaining_handlers,
                     crashing_handler_is_logged_and_skipped,
                     duplicate_handler_is_ignored,
                     added_handlers_take_effect_at_reload,
                     deleted_handlers_stop_running_at_reload,
                     hook_without_handlers_returns_ok_with_the_accumulator,
                     extra_is_extended_with_hook_name_tag_and_host_type,
                     global_handlers_get_no_host_type_in_extra,
                     handlers_are_separate_per_host_type,
                     local_funs_and_bad_priorities_are_rejected]},
     {gen_mod, [], [module_start_sets_up_instrumentation_before_start_and_hooks_after,
                    module_stop_deletes_hooks_before_stop_and_instrumentation_after,
                    module_without_dynamic_domains_support_fails_on_a_dynamic_host_type,
                    module_without_dynamic_domains_support_starts_on_a_static_host,
                    module_missing_from_the_config_cannot_start,
                    module_options_are_read_from_the_modules_config,
                    get_opt_follows_paths_and_falls_back_to_defaults]},
     {mongoose_modules, [], [modules_start_dependencies_first_and_stop_in_reverse,
                             dependencies_are_resolved_with_merged_options,
                             optional_dependency_is_kept_only_when_required_elsewhere,
                             hard_dependency_cycle_is_an_error,
                             ensure_started_records_the_module_and_reloads_hooks,
                             ensure_started_with_other_options_restarts_the_module,
                             ensure_stopped_removes_the_module_and_its_hooks,
                             replace_modules_stops_unused_dependencies]},
     {mongoose_hooks, [], [push_event_runs_the_hook_with_acc_and_metadata,
                           push_event_returns_the_accumulator_of_a_stopped_run,
                           hooks_for_an_undefined_host_type_return_the_accumulator]},
     {mongoose_acc, [], [new_acc_derives_stanza_metadata_from_params,
                         new_acc_parses_jids_from_the_stanza_when_not_given,
                         acc_without_element_has_no_packet,
                         strip_keeps_only_permanent_values,
                         namespaced_values_are_set_read_and_deleted]},
     {jid, [], [from_binary_parses_and_lowercases_jids,
                invalid_jids_are_errors,
                to_binary_prints_records_and_tuples,
                to_bare_to_lower_and_comparisons_work]},
     {exml, [], [exml_query_path_follows_elements_attributes_and_cdata,
                 exml_query_subelements_filter_by_name_and_namespace,
                 exml_to_binary_escapes_text_and_attributes,
                 exml_parse_reads_what_to_binary_writes]},
     {instrument, [], [executing_an_undeclared_event_raises,
                       declaring_an_event_twice_raises,
                       declaring_an_event_with_other_label_keys_raises,
                       span_measures_time_and_returns_the_result,
                       instrument_helper_asserts_emitted_measurements,
                       instrument_helper_waits_for_events_emitted_later,
                       instrument_helper_stop_fails_for_emitted_but_unasserted_events,
                       events_are_recorded_only_while_declared_to_the_helper]},
     {mongoose_wpool, [], [configured_pools_are_registered_per_scope]},
     {ejabberd_sup, [], [host_supervisor_outlives_its_starter_and_stops_from_any_process,
                         children_and_tables_can_be_added_at_run_time]}].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    ok.

%% Each case gets a fresh host: supervisor (gen_hook, mongoose_instrument),
%% config and fixture log.
init_per_testcase(_Case, Config) ->
    {ok, _} = ejabberd_sup:ensure_started(),
    mongoose_config:set_opts(base_config()),
    host_fixture_log:new(),
    Config.

end_per_testcase(_Case, _Config) ->
    ejabberd_sup:stop(),
    mongoose_config:erase_opts(),
    ok.

base_config() ->
    #{hosts => [?STATIC], host_types => [?DYNAMIC],
      {modules, ?STATIC} => #{}, {modules, ?DYNAMIC} => #{},
      outgoing_pools => []}.

%%--------------------------------------------------------------------
%% gen_hook
%%--------------------------------------------------------------------

handlers_run_in_ascending_priority_order() ->
    [{doc, "Handlers run by ascending priority, whatever the order of registration."}].
handlers_run_in_ascending_priority_order(_Config) ->
    add_and_reload([tag_handler(c, 90), tag_handler(a, 10), tag_handler(b, 50)]),
    ?assertEqual({ok, [a, b, c]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

handlers_with_equal_priority_run_in_registration_order() ->
    [{doc, "Among handlers of equal priority, the first registered runs first."}].
handlers_with_equal_priority_run_in_registration_order(_Config) ->
    add_and_reload([tag_handler(first, 50), tag_handler(second, 50), tag_handler(early, 1),
                    tag_handler(third, 50)]),
    ?assertEqual({ok, [early, first, second, third]},
                 gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

stop_result_skips_the_remaining_handlers() ->
    [{doc, "A handler returning {stop, Acc} ends the run with {stop, Acc}."}].
stop_result_skips_the_remaining_handlers(_Config) ->
    add_and_reload([tag_handler(a, 10),
                    {?HOOK, ?STATIC, fun host_fixture_log:stop_with_tag/3, #{tag => s}, 20},
                    tag_handler(never, 30)]),
    ?assertEqual({stop, [a, s]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

crashing_handler_is_logged_and_skipped() ->
    [{doc, "A crashing handler is logged as hook_failed; the next one gets the same Acc."}].
crashing_handler_is_logged_and_skipped(_Config) ->
    capture_logs(),
    add_and_reload([tag_handler(a, 10),
                    {?HOOK, ?STATIC, fun host_fixture_log:crash/3, #{}, 20},
                    tag_handler(b, 30)]),
    ?assertEqual({ok, [a, b]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})),
    #{what := hook_failed, class := error, reason := fixture_crash,
      key := {?HOOK, ?STATIC}, acc := [a]} = wait_for_log(hook_failed).

duplicate_handler_is_ignored() ->
    [{doc, "Adding the same handler twice registers it once."}].
duplicate_handler_is_ignored(_Config) ->
    add_and_reload([tag_handler(a, 10), tag_handler(a, 10)]),
    ?assertEqual({ok, [a]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

added_handlers_take_effect_at_reload() ->
    [{doc, "Handlers added after the last reload do not run until the next one."}].
added_handlers_take_effect_at_reload(_Config) ->
    ok = gen_hook:add_handlers([tag_handler(a, 10)]),
    ?assertEqual({ok, []}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})),
    ok = gen_hook:reload_hooks(),
    ?assertEqual({ok, [a]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

deleted_handlers_stop_running_at_reload() ->
    [{doc, "A deleted handler keeps running until the next reload, then stops."}].
deleted_handlers_stop_running_at_reload(_Config) ->
    add_and_reload([tag_handler(a, 10), tag_handler(b, 20)]),
    ok = gen_hook:delete_handler(?HOOK, ?STATIC, fun host_fixture_log:append_tag/3,
                                 #{tag => a}, 10),
    ?assertEqual({ok, [a, b]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})),
    ok = gen_hook:reload_hooks(),
    ?assertEqual({ok, [b]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

hook_without_handlers_returns_ok_with_the_accumulator() ->
    [{doc, "Running a hook nobody handles returns {ok, Acc} unchanged."}].
hook_without_handlers_returns_ok_with_the_accumulator(_Config) ->
    ?assertEqual({ok, acc}, gen_hook:run_fold(no_such_hook, ?STATIC, acc, #{})),
    ok = gen_hook:reload_hooks(),
    ?assertEqual({ok, acc}, gen_hook:run_fold(no_such_hook, global, acc, #{})).

extra_is_extended_with_hook_name_tag_and_host_type() ->
    [{doc, "Extra gets hook_name, hook_tag and host_type; the handler's own keys win."}].
extra_is_extended_with_hook_name_tag_and_host_type(_Config) ->
    add_and_reload([{?HOOK, ?STATIC, fun host_fixture_log:return_extra/3,
                     #{mine => 1, hook_name => overridden}, 10}]),
    ?assertEqual({ok, #{mine => 1, hook_name => overridden, hook_tag => ?STATIC,
                        host_type => ?STATIC}},
                 gen_hook:run_fold(?HOOK, ?STATIC, acc, #{})).

global_handlers_get_no_host_type_in_extra() ->
    [{doc, "Handlers of the global tag get hook_name and hook_tag only."}].
global_handlers_get_no_host_type_in_extra(_Config) ->
    add_and_reload([{?HOOK, global, fun host_fixture_log:return_extra/3, #{}, 10}]),
    ?assertEqual({ok, #{hook_name => ?HOOK, hook_tag => global}},
                 gen_hook:run_fold(?HOOK, global, acc, #{})),
    ?assertEqual({ok, acc}, gen_hook:run_fold(?HOOK, ?STATIC, acc, #{})).

handlers_are_separate_per_host_type() ->
    [{doc, "Handlers registered for one host type do not run for another."}].
handlers_are_separate_per_host_type(_Config) ->
    add_and_reload([tag_handler(static, 10),
                    {?HOOK, ?DYNAMIC, fun host_fixture_log:append_tag/3, #{tag => dyn}, 10}]),
    ?assertEqual({ok, [static]}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})),
    ?assertEqual({ok, [dyn]}, gen_hook:run_fold(?HOOK, ?DYNAMIC, [], #{})).

local_funs_and_bad_priorities_are_rejected() ->
    [{doc, "Only external funs of exported functions and priorities > 0 are accepted."}].
local_funs_and_bad_priorities_are_rejected(_Config) ->
    Local = fun(Acc, _, _) -> {ok, Acc} end,
    ?assertError(#{what := only_external_function_references_allowed},
                 gen_hook:add_handlers([{?HOOK, ?STATIC, Local, #{}, 10}])),
    ?assertError(#{what := function_is_not_exported},
                 gen_hook:add_handlers([{?HOOK, ?STATIC, fun host_fixture_log:nope/3, #{}, 10}])),
    ?assertError(_, gen_hook:add_handlers([tag_handler(a, 0)])),
    ?assertError(_, gen_hook:add_handlers([tag_handler(a, 1.5)])),
    ?assertError(_, gen_hook:add_handlers([{?HOOK, undefined, fun host_fixture_log:append_tag/3,
                                             #{tag => a}, 10}])).

%%--------------------------------------------------------------------
%% gen_mod
%%--------------------------------------------------------------------

module_start_sets_up_instrumentation_before_start_and_hooks_after() ->
    [{doc, "At start/2 the module's events are declared and its hooks not yet added."}].
module_start_sets_up_instrumentation_before_start_and_hooks_after(_Config) ->
    Opts = #{opt => 1},
    set_modules(?DYNAMIC, #{host_fixture_mod => Opts}),
    ?assertEqual({ok, ok}, gen_mod:start_module(?DYNAMIC, host_fixture_mod, Opts)),
    ?assertMatch([{start, host_fixture_mod, ?DYNAMIC, Opts,
                   #{instrumented := true, hooked := false}}], host_fixture_log:entries()),
    ok = gen_hook:reload_hooks(),
    ?assertEqual({ok, [host_fixture_mod]}, gen_hook:run_fold(?HOOK, ?DYNAMIC, [], #{})).

module_stop_deletes_hooks_before_stop_and_instrumentation_after() ->
    [{doc, "At stop/1 the hooks are gone and the events still declared; then torn down."}].
module_stop_deletes_hooks_before_stop_and_instrumentation_after(_Config) ->
    set_modules(?DYNAMIC, #{host_fixture_mod => #{}}),
    {ok, _} = gen_mod:start_module(?DYNAMIC, host_fixture_mod, #{}),
    ok = gen_mod:stop_module(?DYNAMIC, host_fixture_mod),
    ?assertMatch([_, {stop, host_fixture_mod, ?DYNAMIC,
                      #{instrumented := true, hooked := false}}], host_fixture_log:entries()),
    ?assertError(#{what := event_not_registered},
                 mongoose_instrument:execute(?EVENT, #{host_type => ?DYNAMIC}, #{})).

module_without_dynamic_domains_support_fails_on_a_dynamic_host_type() ->
    [{doc, "A module not listing dynamic_domains cannot start on a host_types entry."}].
module_without_dynamic_domains_support_fails_on_a_dynamic_host_type(_Config) ->
    set_modules(?DYNAMIC, #{host_fixture_static_mod => #{}}),
    ?assertError({host_fixture_static_mod, ?DYNAMIC, dynamic_domains_feature_is_not_supported},
                 gen_mod:start_module(?DYNAMIC, host_fixture_static_mod, #{})),
    ?assertEqual([], host_fixture_log:entries()).

module_without_dynamic_domains_support_starts_on_a_static_host() ->
    [{doc, "Entries of hosts are static host types: any module starts there."}].
module_without_dynamic_domains_support_starts_on_a_static_host(_Config) ->
    set_modules(?STATIC, #{host_fixture_static_mod => #{}}),
    {ok, _} = gen_mod:start_module(?STATIC, host_fixture_static_mod, #{}),
    ?assertEqual([{start, host_fixture_static_mod, ?STATIC, #{}}], host_fixture_log:entries()).

module_missing_from_the_config_cannot_start() ->
    [{doc, "gen_mod starts only modules listed under {modules, HostType}."}].
module_missing_from_the_config_cannot_start(_Config) ->
    ?assertError(#{what := module_not_loaded},
                 gen_mod:start_module(?STATIC, host_fixture_static_mod, #{})).

module_options_are_read_from_the_modules_config() ->
    [{doc, "Module options and loaded modules come from {modules, HostType}."}].
module_options_are_read_from_the_modules_config(_Config) ->
    Opts = #{flat => 1, nested => #{inner => 2}},
    set_modules(?STATIC, #{host_fixture_mod => Opts}),
    ?assertEqual(1, gen_mod:get_module_opt(?STATIC, host_fixture_mod, flat)),
    ?assertEqual(2, gen_mod:get_module_opt(?STATIC, host_fixture_mod, [nested, inner])),
    ?assertEqual(dflt, gen_mod:get_module_opt(?STATIC, host_fixture_mod, missing, dflt)),
    ?assertError({badkey, missing}, gen_mod:get_module_opt(?STATIC, host_fixture_mod, missing)),
    ?assertEqual(Opts, gen_mod:get_module_opts(?STATIC, host_fixture_mod)),
    ?assertEqual(#{}, gen_mod:get_module_opts(?STATIC, host_fixture_dep_mod)),
    ?assertEqual(Opts, gen_mod:get_loaded_module_opts(?STATIC, host_fixture_mod)),
    ?assertError({badkey, _}, gen_mod:get_loaded_module_opts(?STATIC, host_fixture_dep_mod)),
    ?assert(gen_mod:is_loaded(?STATIC, host_fixture_mod)),
    ?assertNot(gen_mod:is_loaded(?DYNAMIC, host_fixture_mod)),
    ?assertEqual([host_fixture_mod], gen_mod:loaded_modules(?STATIC)),
    ?assertEqual([?STATIC], gen_mod:hosts_with_module(host_fixture_mod)).

get_opt_follows_paths_and_falls_back_to_defaults() ->
    [{doc, "gen_mod:get_opt/2,3 read a key or a path of an options map."}].
get_opt_follows_paths_and_falls_back_to_defaults(_Config) ->
    Opts = #{a => #{b => 1}},
    ?assertEqual(#{b => 1}, gen_mod:get_opt(a, Opts)),
    ?assertEqual(1, gen_mod:get_opt([a, b], Opts)),
    ?assertEqual(x, gen_mod:get_opt([a, c], Opts, x)),
    ?assertError({badkey, c}, gen_mod:get_opt(c, Opts)).

%%--------------------------------------------------------------------
%% mongoose_modules and gen_mod_deps
%%--------------------------------------------------------------------

modules_start_dependencies_first_and_stop_in_reverse() ->
    [{doc, "mongoose_modules starts dependencies before their users, stops them after."}].
modules_start_dependencies_first_and_stop_in_reverse(_Config) ->
    ModOpts = #{deps => [{host_fixture_dep_mod, #{}, hard}]},
    DepOpts = #{deps => [{host_fixture_static_mod, #{}, soft}]},
    Resolved = gen_mod_deps:resolve_deps(?STATIC, #{host_fixture_mod => ModOpts,
                                                    host_fixture_dep_mod => DepOpts}),
    set_modules(?STATIC, Resolved),
    ok = mongoose_modules:start(),
    ok = mongoose_modules:stop(),
    ?assertEqual([{start, host_fixture_static_mod}, {start, host_fixture_dep_mod},
                  {start, host_fixture_mod}],
                 [{A, M} || {A, M} <- started_and_stopped(), A =:= start]),
    ?assertEqual([{stop, host_fixture_mod}, {stop, host_fixture_dep_mod},
                  {stop, host_fixture_static_mod}],
                 [{A, M} || {A, M} <- started_and_stopped(), A =:= stop]).

dependencies_are_resolved_with_merged_options() ->
    [{doc, "A dependency required with options gets them merged into its configured ones."}].
dependencies_are_resolved_with_merged_options(_Config) ->
    Resolved = gen_mod_deps:resolve_deps(
                 ?STATIC, #{host_fixture_mod => #{deps => [{host_fixture_dep_mod, #{b => 2},
                                                            hard}]},
                            host_fixture_dep_mod => #{a => 1}}),
    ?assertEqual(#{a => 1, b => 2}, maps:get(host_fixture_dep_mod, Resolved)),
    Sorted = gen_mod_deps:sort_deps(?STATIC, Resolved),
    ?assertEqual([host_fixture_dep_mod, host_fixture_mod], [M || {M, _} <- Sorted]).

optional_dependency_is_kept_only_when_required_elsewhere() ->
    [{doc, "An optional dependency is started only if it is also configured or required."}].
optional_dependency_is_kept_only_when_required_elsewhere(_Config) ->
    Optional = #{host_fixture_mod => #{deps => [{host_fixture_dep_mod, #{o => 1}, optional}]}},
    ?assertEqual([host_fixture_mod],
                 maps:keys(gen_mod_deps:resolve_deps(?STATIC, Optional))),
    WithDep = Optional#{host_fixture_dep_mod => #{a => 1}},
    ?assertEqual(#{a => 1, o => 1},
                 maps:get(host_fixture_dep_mod, gen_mod_deps:resolve_deps(?STATIC, WithDep))).

hard_dependency_cycle_is_an_error() ->
    [{doc, "Modules depending on each other with hard dependencies cannot be ordered."}].
hard_dependency_cycle_is_an_error(_Config) ->
    Modules = #{host_fixture_mod => #{deps => [{host_fixture_dep_mod, #{}, hard}]},
                host_fixture_dep_mod => #{deps => [{host_fixture_mod, #{}, hard}]}},
    ?assertError({dependency_cycle, _}, gen_mod_deps:sort_deps(?STATIC, Modules)),
    Soft = Modules#{host_fixture_dep_mod => #{deps => [{host_fixture_mod, #{}, soft}]}},
    ?assertEqual([host_fixture_dep_mod, host_fixture_mod],
                 [M || {M, _} <- gen_mod_deps:sort_deps(?STATIC, Soft)]).

ensure_started_records_the_module_and_reloads_hooks() ->
    [{doc, "ensure_started/3 lists the module in the config and its hooks run at once."}].
ensure_started_records_the_module_and_reloads_hooks(_Config) ->
    ?assertEqual({started, ok}, mongoose_modules:ensure_started(?DYNAMIC, host_fixture_mod, #{})),
    ?assertEqual(#{host_fixture_mod => #{}}, mongoose_config:get_opt({modules, ?DYNAMIC})),
    ?assertEqual({ok, [host_fixture_mod]}, gen_hook:run_fold(?HOOK, ?DYNAMIC, [], #{})),
    ?assertEqual(already_started,
                 mongoose_modules:ensure_started(?DYNAMIC, host_fixture_mod, #{})).

ensure_started_with_other_options_restarts_the_module() ->
    [{doc, "ensure_started/3 with new options stops and starts the module again."}].
ensure_started_with_other_options_restarts_the_module(_Config) ->
    {started, _} = mongoose_modules:ensure_started(?STATIC, host_fixture_dep_mod, #{a => 1}),
    ?assertEqual({restarted, #{a => 1}, ok},
                 mongoose_modules:ensure_started(?STATIC, host_fixture_dep_mod, #{a => 2})),
    ?assertEqual(#{a => 2}, gen_mod:get_loaded_module_opts(?STATIC, host_fixture_dep_mod)),
    ?assertEqual([{start, host_fixture_dep_mod, ?STATIC, #{a => 1}},
                  {stop, host_fixture_dep_mod, ?STATIC},
                  {start, host_fixture_dep_mod, ?STATIC, #{a => 2}}],
                 host_fixture_log:entries()).

ensure_stopped_removes_the_module_and_its_hooks() ->
    [{doc, "ensure_stopped/2 unlists the module and its hooks stop running at once."}].
ensure_stopped_removes_the_module_and_its_hooks(_Config) ->
    {started, _} = mongoose_modules:ensure_started(?STATIC, host_fixture_mod, #{}),
    ?assertEqual({stopped, #{}}, mongoose_modules:ensure_stopped(?STATIC, host_fixture_mod)),
    ?assertNot(gen_mod:is_loaded(?STATIC, host_fixture_mod)),
    ?assertEqual({ok, []}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})),
    ?assertEqual(already_stopped, mongoose_modules:ensure_stopped(?STATIC, host_fixture_mod)).

replace_modules_stops_unused_dependencies() ->
    [{doc, "replace_modules/3 stops a module and the dependencies nothing else needs."}].
replace_modules_stops_unused_dependencies(_Config) ->
    Modules = gen_mod_deps:resolve_deps(
                ?STATIC, #{host_fixture_mod => #{deps => [{host_fixture_dep_mod, #{}, hard}]}}),
    set_modules(?STATIC, Modules),
    ok = mongoose_modules:start(),
    ok = mongoose_modules:replace_modules(?STATIC, [host_fixture_mod],
                                          #{host_fixture_static_mod => #{}}),
    ?assertEqual([host_fixture_static_mod], gen_mod:loaded_modules(?STATIC)),
    ?assertEqual([{start, host_fixture_dep_mod}, {start, host_fixture_mod},
                  {stop, host_fixture_mod}, {stop, host_fixture_dep_mod},
                  {start, host_fixture_static_mod}], started_and_stopped()).

%%--------------------------------------------------------------------
%% mongoose_hooks
%%--------------------------------------------------------------------

push_event_runs_the_hook_with_acc_and_metadata() ->
    [{doc, "push_event/2 runs push_event for the acc's host type, params #{event}."}].
push_event_runs_the_hook_with_acc_and_metadata(_Config) ->
    add_and_reload([{push_event, ?STATIC, fun host_fixture_log:return_params/3, #{}, 10}]),
    Acc = new_acc(),
    ?assertEqual(#{event => my_event}, mongoose_hooks:push_event(Acc, my_event)),
    ok = gen_hook:delete_handlers([{push_event, ?STATIC, fun host_fixture_log:return_params/3,
                                    #{}, 10}]),
    ok = gen_hook:reload_hooks(),
    ?assertEqual(#{acc => Acc, metadata => #{}}, mongoose_hooks:push_event(Acc, my_event)).

push_event_returns_the_accumulator_of_a_stopped_run() ->
    [{doc, "mongoose_hooks returns the final accumulator whether the run stopped or not."}].
push_event_returns_the_accumulator_of_a_stopped_run(_Config) ->
    add_and_reload([{push_event, ?STATIC, fun host_fixture_log:stop_with_extra/3, #{s => 1}, 10},
                    {push_event, ?STATIC, fun host_fixture_log:return_params/3, #{}, 20}]),
    ?assertMatch(#{s := 1, hook_name := push_event},
                 mongoose_hooks:push_event(new_acc(), my_event)).

hooks_for_an_undefined_host_type_return_the_accumulator() ->
    [{doc, "A hook run for an acc without host type runs nothing and returns the acc."}].
hooks_for_an_undefined_host_type_return_the_accumulator(_Config) ->
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC}),
    ?assertEqual(#{acc => Acc, metadata => #{}}, mongoose_hooks:push_event(Acc, ev)).

%%--------------------------------------------------------------------
%% mongoose_acc
%%--------------------------------------------------------------------

new_acc_derives_stanza_metadata_from_params() ->
    [{doc, "new/1 takes the JIDs from params and name and type from the element."}].
new_acc_derives_stanza_metadata_from_params(_Config) ->
    From = jid:make(<<"alice">>, ?STATIC, <<"res">>),
    To = jid:make_bare(<<"bob">>, ?STATIC),
    El = #xmlel{name = <<"message">>, attrs = #{<<"type">> => <<"chat">>,
                                                 <<"to">> => <<"bob@static.test">>}},
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC, host_type => ?STATIC,
                             element => El, from_jid => From, to_jid => To}),
    ?assertEqual(?STATIC, mongoose_acc:host_type(Acc)),
    ?assertEqual(?STATIC, mongoose_acc:lserver(Acc)),
    ?assertEqual(El, mongoose_acc:element(Acc)),
    ?assertEqual(<<"message">>, mongoose_acc:stanza_name(Acc)),
    ?assertEqual(<<"chat">>, mongoose_acc:stanza_type(Acc)),
    ?assertEqual({From, To, El}, mongoose_acc:packet(Acc)),
    ?assertEqual(From, mongoose_acc:from_jid(Acc)),
    ?assertEqual(To, mongoose_acc:to_jid(Acc)).

new_acc_parses_jids_from_the_stanza_when_not_given() ->
    [{doc, "Without from_jid/to_jid, new/1 parses the stanza's from and to; no type is undefined."}].
new_acc_parses_jids_from_the_stanza_when_not_given(_Config) ->
    El = #xmlel{name = <<"presence">>, attrs = #{<<"from">> => <<"A@Static.Test/R">>,
                                                  <<"to">> => <<"b@static.test">>}},
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC, element => El}),
    ?assertEqual(jid:make(<<"a">>, ?STATIC, <<"R">>), mongoose_acc:from_jid(Acc)),
    ?assertEqual(jid:make(<<"b">>, ?STATIC, <<>>), mongoose_acc:to_jid(Acc)),
    ?assertEqual(undefined, mongoose_acc:stanza_type(Acc)),
    ?assertEqual(undefined, mongoose_acc:host_type(Acc)),
    NoFrom = #xmlel{name = <<"message">>, attrs = #{<<"to">> => <<"b@static.test">>}},
    ?assertError({badmatch, error},
                 mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC,
                                    element => NoFrom})).

acc_without_element_has_no_packet() ->
    [{doc, "An acc without element has no stanza: packet, element and type are undefined."}].
acc_without_element_has_no_packet(_Config) ->
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC, host_type => ?STATIC}),
    ?assertEqual(undefined, mongoose_acc:packet(Acc)),
    ?assertEqual(undefined, mongoose_acc:element(Acc)),
    ?assertEqual(undefined, mongoose_acc:stanza_type(Acc)),
    ?assertEqual(undefined, mongoose_acc:from_jid(Acc)),
    ?assertError(function_clause, mongoose_acc:new(#{lserver => ?STATIC})).

strip_keeps_only_permanent_values() ->
    [{doc, "strip/1 drops values set with set/4 and keeps those set with set_permanent."}].
strip_keeps_only_permanent_values(_Config) ->
    Acc0 = new_acc(),
    Acc1 = mongoose_acc:set(ns, temp, 1, Acc0),
    Acc2 = mongoose_acc:set_permanent(ns, kept, 2, Acc1),
    Acc3 = mongoose_acc:set_permanent(event_pusher, [{a, 1}, {b, 2}], Acc2),
    ?assertEqual([{event_pusher, a}, {event_pusher, b}, {ns, kept}],
                 lists:sort(mongoose_acc:get_permanent_keys(Acc3))),
    Stripped = mongoose_acc:strip(Acc3),
    ?assertEqual(2, mongoose_acc:get(ns, kept, Stripped)),
    ?assertEqual(none, mongoose_acc:get(ns, temp, none, Stripped)),
    ?assertEqual(mongoose_acc:element(Acc0), mongoose_acc:element(Stripped)),
    ?assertEqual(mongoose_acc:ref(Acc0), mongoose_acc:ref(Stripped)).

namespaced_values_are_set_read_and_deleted() ->
    [{doc, "get/2 lists a namespace, get/3 raises on a missing key, delete/2,3 remove."}].
namespaced_values_are_set_read_and_deleted(_Config) ->
    Acc = mongoose_acc:set(ns, [{a, 1}, {b, 2}], mongoose_acc:set(other, c, 3, new_acc())),
    ?assertEqual([{a, 1}, {b, 2}], lists:sort(mongoose_acc:get(ns, Acc))),
    ?assertEqual(1, mongoose_acc:get(ns, a, Acc)),
    ?assertError({badkey, {ns, x}}, mongoose_acc:get(ns, x, Acc)),
    ?assertEqual([{b, 2}], mongoose_acc:get(ns, mongoose_acc:delete(ns, a, Acc))),
    ?assertEqual([], mongoose_acc:get(ns, mongoose_acc:delete(ns, Acc))),
    ?assertEqual(3, mongoose_acc:get(other, c, mongoose_acc:delete(ns, Acc))),
    Updated = mongoose_acc:update_stanza(#{element => #xmlel{name = <<"iq">>,
                                                             attrs = #{<<"type">> => <<"get">>}},
                                           from_jid => jid:make_bare(<<"x">>, ?STATIC),
                                           to_jid => jid:make_bare(<<>>, ?STATIC)}, Acc),
    ?assertEqual(<<"get">>, mongoose_acc:stanza_type(Updated)),
    ?assertEqual(<<"iq">>, mongoose_acc:stanza_name(Updated)).

%%--------------------------------------------------------------------
%% jid
%%--------------------------------------------------------------------

from_binary_parses_and_lowercases_jids() ->
    [{doc, "from_binary/1 splits user, server and resource; user and server are lowercased."}].
from_binary_parses_and_lowercases_jids(_Config) ->
    ?assertEqual(#jid{luser = <<"alice">>, lserver = <<"example.com">>, lresource = <<"Phone">>},
                 jid:from_binary(<<"Alice@Example.COM/Phone">>)),
    ?assertEqual(#jid{luser = <<>>, lserver = <<"example.com">>, lresource = <<>>},
                 jid:from_binary(<<"example.com">>)),
    ?assertEqual(#jid{luser = <<>>, lserver = <<"example.com">>, lresource = <<"a@b/c">>},
                 jid:from_binary(<<"example.com/a@b/c">>)),
    ?assertEqual(#jid{luser = <<"żółw"/utf8>>, lserver = <<"x.test">>, lresource = <<>>},
                 jid:from_binary(<<"ŻÓŁW@x.test"/utf8>>)),
    ?assertEqual(jid:make(<<"ALICE">>, <<"Example.com">>, <<"R">>),
                 jid:from_binary(<<"alice@example.com/R">>)).

invalid_jids_are_errors() ->
    [{doc, "Empty parts, two '@' and forbidden characters make error."}].
invalid_jids_are_errors(_Config) ->
    [?assertEqual(error, jid:from_binary(Bin))
     || Bin <- [<<>>, <<"@example.com">>, <<"a@">>, <<"a@b@c">>, <<"/res">>, <<"a@/r">>,
                <<"a b@example.com">>, <<"a:b@example.com">>, <<"a@b c">>]],
    ?assertEqual(error, jid:make(<<"a">>, <<>>, <<>>)),
    ?assertEqual(error, jid:make(<<"a<">>, <<"b">>, <<>>)),
    ?assertEqual(error, jid:from_binary(undefined)).

to_binary_prints_records_and_tuples() ->
    [{doc, "to_binary/1 prints #jid{} records, 3- and 2-tuples, and passes binaries."}].
to_binary_prints_records_and_tuples(_Config) ->
    ?assertEqual(<<"a@b/c">>, jid:to_binary(jid:make(<<"a">>, <<"b">>, <<"c">>))),
    ?assertEqual(<<"a@b">>, jid:to_binary({<<"a">>, <<"b">>, <<>>})),
    ?assertEqual(<<"b/c">>, jid:to_binary({<<>>, <<"b">>, <<"c">>})),
    ?assertEqual(<<"a@b">>, jid:to_binary({<<"a">>, <<"b">>})),
    ?assertEqual(<<"b">>, jid:to_binary({<<>>, <<"b">>})),
    ?assertEqual(<<"raw">>, jid:to_binary(<<"raw">>)),
    ?assertEqual(<<"a@b">>, jid:to_bare_binary(jid:make(<<"a">>, <<"b">>, <<"c">>))),
    ?assertEqual(<<"a@b">>, jid:to_bare_binary(<<"A@B/c">>)).

to_bare_to_lower_and_comparisons_work() ->
    [{doc, "to_bare, to_lower, to_lus, are_equal and are_bare_equal as in mongoose_jid."}].
to_bare_to_lower_and_comparisons_work(_Config) ->
    Full = jid:make(<<"A">>, <<"B">>, <<"R">>),
    ?assertEqual(jid:make(<<"a">>, <<"b">>, <<>>), jid:to_bare(Full)),
    ?assertEqual({<<"a">>, <<"b">>, <<"R">>}, jid:to_lower(Full)),
    ?assertEqual({<<"a">>, <<"b">>, <<"R">>}, jid:to_lower({<<"A">>, <<"B">>, <<"R">>})),
    ?assertEqual({<<"a">>, <<"b">>}, jid:to_lus(Full)),
    ?assertEqual({<<"a">>, <<"b">>, <<>>}, jid:to_bare({<<"a">>, <<"b">>, <<"R">>})),
    ?assert(jid:are_equal(Full, jid:from_binary(<<"a@b/R">>))),
    ?assertNot(jid:are_equal(Full, jid:from_binary(<<"a@b/r">>))),
    ?assert(jid:are_bare_equal(Full, jid:from_binary(<<"a@b/other">>))),
    ?assertEqual(<<"b">>, jid:lserver(Full)),
    ?assertEqual(jid:make(<<"a">>, <<"b">>, <<"new">>), jid:replace_resource(Full, <<"new">>)).

%%--------------------------------------------------------------------
%% exml and exml_query
%%--------------------------------------------------------------------

exml_query_path_follows_elements_attributes_and_cdata() ->
    [{doc, "path/2,3 follow the first matching child; a failed step gives the default."}].
exml_query_path_follows_elements_attributes_and_cdata(_Config) ->
    Msg = sample_message(),
    ?assertEqual(<<"hello">>, exml_query:path(Msg, [{element, <<"body">>}, cdata])),
    ?assertEqual(<<"n1">>, exml_query:path(Msg, [{element_with_ns, <<"urn:x">>},
                                                 {attr, <<"node">>}])),
    ?assertEqual(<<"n1">>, exml_query:path(Msg, [{element_with_ns, <<"x">>, <<"urn:x">>},
                                                 {attr, <<"node">>}])),
    ?assertEqual(undefined, exml_query:path(Msg, [{element, <<"nope">>}, cdata])),
    ?assertEqual(dflt, exml_query:path(Msg, [{element, <<"body">>}, {attr, <<"a">>}], dflt)),
    ?assertEqual(<<"chat">>, exml_query:attr(Msg, <<"type">>)),
    ?assertEqual(none, exml_query:attr(Msg, <<"id">>, none)),
    ?assertEqual(<<"hello">>, exml_query:cdata(exml_query:subelement(Msg, <<"body">>))),
    ?assertEqual([<<"hello">>, <<"again">>],
                 exml_query:paths(Msg, [{element, <<"body">>}, cdata])).

exml_query_subelements_filter_by_name_and_namespace() ->
    [{doc, "subelement(s) select children by name, namespace or attribute."}].
exml_query_subelements_filter_by_name_and_namespace(_Config) ->
    Msg = sample_message(),
    ?assertEqual(2, length(exml_query:subelements(Msg, <<"body">>))),
    ?assertEqual(undefined, exml_query:subelement(Msg, <<"hello">>)),
    ?assertMatch(#xmlel{name = <<"x">>}, exml_query:subelement_with_ns(Msg, <<"urn:x">>)),
    ?assertMatch([#xmlel{name = <<"x">>}], exml_query:subelements_with_ns(Msg, <<"urn:x">>)),
    ?assertMatch(#xmlel{name = <<"x">>},
                 exml_query:subelement_with_attr(Msg, <<"node">>, <<"n1">>)).

exml_to_binary_escapes_text_and_attributes() ->
    [{doc, "to_binary/1 prints as exml: single-quoted attributes, escaped text, <el/>."}].
exml_to_binary_escapes_text_and_attributes(_Config) ->
    El = #xmlel{name = <<"a">>, attrs = #{<<"k">> => <<"x&\"y">>},
                children = [#xmlcdata{content = <<"1 < 2 & 'q'">>}, #xmlel{name = <<"b">>}]},
    ?assertEqual(<<"<a k='x&amp;\"y'>1 &lt; 2 &amp; &apos;q&apos;<b/></a>">>, exml:to_binary(El)),
    ?assertEqual(<<"<a k=\"it's\"/>">>,
                 exml:to_binary(#xmlel{name = <<"a">>, attrs = #{<<"k">> => <<"it's">>}})).

exml_parse_reads_what_to_binary_writes() ->
    [{doc, "parse/1 turns printed XML back into the same element."}].
exml_parse_reads_what_to_binary_writes(_Config) ->
    Msg = sample_message(),
    ?assertEqual({ok, Msg}, exml:parse(exml:to_binary(Msg))),
    ?assertMatch({error, _}, exml:parse(<<"<a>">>)).

%%--------------------------------------------------------------------
%% mongoose_instrument and instrument_helper
%%--------------------------------------------------------------------

executing_an_undeclared_event_raises() ->
    [{doc, "execute/3 of an event nobody set up raises event_not_registered."}].
executing_an_undeclared_event_raises(_Config) ->
    ?assertError(#{what := event_not_registered, event_name := nobody_declared},
                 mongoose_instrument:execute(nobody_declared, #{}, #{count => 1})),
    ?assertError(#{what := event_not_registered},
                 mongoose_instrument:span(nobody_declared, #{}, fun() -> ran end,
                                          fun(_, _) -> #{} end)).

declaring_an_event_twice_raises() ->
    [{doc, "set_up/3 of an event already declared with the same labels raises."}].
declaring_an_event_twice_raises(_Config) ->
    ok = mongoose_instrument:set_up(?EVENT, #{host_type => ?STATIC}, #{}),
    ?assertError(#{what := event_already_registered},
                 mongoose_instrument:set_up(?EVENT, #{host_type => ?STATIC}, #{})),
    ok = mongoose_instrument:tear_down(?EVENT, #{host_type => ?STATIC}),
    ok = mongoose_instrument:tear_down(?EVENT, #{host_type => ?STATIC}),
    ok = mongoose_instrument:set_up(?EVENT, #{host_type => ?STATIC}, #{}).

declaring_an_event_with_other_label_keys_raises() ->
    [{doc, "All label sets of one event must have the same keys."}].
declaring_an_event_with_other_label_keys_raises(_Config) ->
    ok = mongoose_instrument:set_up(?EVENT, #{host_type => ?STATIC}, #{}),
    ok = mongoose_instrument:set_up(?EVENT, #{host_type => ?DYNAMIC}, #{}),
    ?assertError(#{what := inconsistent_labels},
                 mongoose_instrument:set_up(?EVENT, #{pool_tag => p}, #{})).

span_measures_time_and_returns_the_result() ->
    [{doc, "span/4,5 return F's result and emit MeasureF(TimeInMicroseconds, Result)."}].
span_measures_time_and_returns_the_result(_Config) ->
    Labels = #{host_type => ?STATIC},
    ok = mongoose_instrument:set_up(?EVENT, Labels, #{metrics => #{time => histogram}}),
    instrument_helper:start([{?EVENT, Labels}]),
    MeasureF = fun(Time, Result) -> #{time => Time, result => Result} end,
    ?assertEqual(done, mongoose_instrument:span(?EVENT, Labels,
                                                fun() -> timer:sleep(20), done end, MeasureF)),
    ?assertEqual(7, mongoose_instrument:span(?EVENT, Labels, fun erlang:'+'/2, [3, 4],
                                             MeasureF)),
    instrument_helper:assert_one(?EVENT, Labels,
                                 fun(#{time := T, result := done}) -> T >= 20000 end),
    instrument_helper:assert_one(?EVENT, Labels, fun(#{result := R}) -> R =:= 7 end),
    instrument_helper:stop().

instrument_helper_asserts_emitted_measurements() ->
    [{doc, "assert/3 passes if one emission matches; assert_not_emitted if none does."}].
instrument_helper_asserts_emitted_measurements(_Config) ->
    Labels = #{host_type => ?STATIC},
    Other = #{host_type => ?DYNAMIC},
    ok = mongoose_instrument:set_up([{?EVENT, Labels, #{}}, {?EVENT, Other, #{}}]),
    instrument_helper:start([{?EVENT, Labels}, {?EVENT, Other}]),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{count => 1, code => <<"200">>}),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{count => 1, code => <<"500">>}),
    instrument_helper:assert(?EVENT, Labels, fun(#{code := C}) -> C =:= <<"500">> end),
    instrument_helper:assert_not_emitted(?EVENT, Labels, fun(#{code := C}) -> C =:= <<"404">> end),
    instrument_helper:assert_not_emitted(?EVENT, Other),
    ?assertEqual([#{count => 1, code => <<"200">>}, #{count => 1, code => <<"500">>}],
                 instrument_helper:select(?EVENT, Labels)),
    ?assertExit({test_case_failed, _},
                instrument_helper:assert_one(?EVENT, Labels, fun(#{count := 1}) -> true end)),
    instrument_helper:stop().

instrument_helper_waits_for_events_emitted_later() ->
    [{doc, "wait_and_assert/3 polls until another process emits the event."}].
instrument_helper_waits_for_events_emitted_later(_Config) ->
    Labels = #{host_type => ?STATIC},
    ok = mongoose_instrument:set_up(?EVENT, Labels, #{}),
    instrument_helper:start([{?EVENT, Labels}]),
    spawn(fun() ->
                  timer:sleep(300),
                  mongoose_instrument:execute(?EVENT, Labels, #{late => true})
          end),
    instrument_helper:wait_and_assert(?EVENT, Labels, fun(#{late := L}) -> L end),
    instrument_helper:stop().

instrument_helper_stop_fails_for_emitted_but_unasserted_events() ->
    [{doc, "stop/0 fails when a declared event was emitted but never asserted on."}].
instrument_helper_stop_fails_for_emitted_but_unasserted_events(_Config) ->
    Labels = #{host_type => ?STATIC},
    ok = mongoose_instrument:set_up(?EVENT, Labels, #{}),
    instrument_helper:start([{?EVENT, Labels}]),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{count => 1}),
    ?assertExit({test_case_failed, _}, instrument_helper:stop()).

events_are_recorded_only_while_declared_to_the_helper() ->
    [{doc, "Only events passed to start/1 are recorded, and only until stop/0."}].
events_are_recorded_only_while_declared_to_the_helper(_Config) ->
    Labels = #{host_type => ?STATIC},
    Late = #{host_type => ?DYNAMIC},
    Undeclared = #{host_type => <<"third">>},
    ok = mongoose_instrument:set_up([{?EVENT, Labels, #{}}, {?EVENT, Undeclared, #{}}]),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{before_start => true}),
    instrument_helper:start([{?EVENT, Labels}, {?EVENT, Late}]),
    %% set up after start/1: recorded too, as in MongooseIM
    ok = mongoose_instrument:set_up(?EVENT, Late, #{}),
    ok = mongoose_instrument:execute(?EVENT, Late, #{late => true}),
    ok = mongoose_instrument:execute(?EVENT, Undeclared, #{undeclared => true}),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{after_start => true}),
    ?assertEqual([#{after_start => true}], instrument_helper:select(?EVENT, Labels)),
    ?assertEqual([#{late => true}], instrument_helper:select(?EVENT, Late)),
    ?assertEqual([], instrument_helper:select(?EVENT, Undeclared)),
    instrument_helper:assert(?EVENT, Labels, fun(#{after_start := true}) -> true end),
    instrument_helper:assert(?EVENT, Late, fun(#{late := true}) -> true end),
    instrument_helper:stop(),
    ok = mongoose_instrument:execute(?EVENT, Labels, #{after_stop => true}),
    ?assertEqual([], instrument_helper:select(?EVENT, Labels)).

%%--------------------------------------------------------------------
%% mongoose_wpool
%%--------------------------------------------------------------------

configured_pools_are_registered_per_scope() ->
    [{doc, "Configured pools start per scope; host type lookups fall back to global."}].
configured_pools_are_registered_per_scope(_Config) ->
    Pools = [#{type => http, scope => global, tag => http_pool, opts => #{workers => 10},
               conn_opts => #{host => "http://localhost:8080"}},
             #{type => redis, scope => host_type, tag => default,
               opts => #{strategy => available_worker}, conn_opts => #{}}],
    mongoose_config:set_opts((base_config())#{outgoing_pools => Pools}),
    Results = mongoose_wpool:start_configured_pools(),
    ?assertMatch([{ok, _}, {ok, _}, {ok, _}], Results),
    [?assert(is_process_alive(Pid)) || {ok, Pid} <- Results],
    ?assertEqual(lists:sort([{http, global, http_pool}, {redis, ?STATIC, default},
                             {redis, ?DYNAMIC, default}]),
                 lists:sort(mongoose_wpool:get_pools())),
    ?assertNotEqual(undefined, mongoose_wpool:get_pool_settings(http, ?STATIC, http_pool)),
    ?assertEqual(undefined, mongoose_wpool:get_pool_settings(redis, global, default)),
    ?assert(is_pid(whereis(mongoose_wpool:make_pool_name(http, global, http_pool)))),
    ok = mongoose_instrument:execute(wpool_global_queue_lengths,
                                     #{pool_type => http, pool_tag => http_pool}, #{total => 0}),
    mongoose_wpool:stop(),
    ?assertEqual([], mongoose_wpool:get_pools()),
    [?assertNot(is_process_alive(Pid)) || {ok, Pid} <- Results].

%%--------------------------------------------------------------------
%% ejabberd_sup
%%--------------------------------------------------------------------

host_supervisor_outlives_its_starter_and_stops_from_any_process() ->
    [{doc, "ensure_started/0 leaves the host running after its caller exits; stop/0 works anywhere."}].
host_supervisor_outlives_its_starter_and_stops_from_any_process(_Config) ->
    ok = ejabberd_sup:stop(),
    undefined = whereis(ejabberd_sup),
    run_in_process(fun() -> {ok, _} = ejabberd_sup:ensure_started() end),
    Sup = whereis(ejabberd_sup),
    ?assert(is_pid(Sup)),
    ?assert(is_pid(whereis(gen_hook))),
    ?assert(is_pid(whereis(mongoose_instrument))),
    ?assertEqual({ok, Sup}, ejabberd_sup:ensure_started()),
    run_in_process(fun() -> ok = ejabberd_sup:stop() end),
    ?assertNot(is_process_alive(Sup)),
    ?assertEqual(undefined, whereis(gen_hook)),
    ?assertEqual({ok, []}, gen_hook:run_fold(?HOOK, ?STATIC, [], #{})).

children_and_tables_can_be_added_at_run_time() ->
    [{doc, "start_child/1 and stop_child/1 manage children; created tables outlive their creator."}].
children_and_tables_can_be_added_at_run_time(_Config) ->
    Spec = #{id => fixture_child, start => {gen_event, start_link, []}},
    {ok, Pid} = ejabberd_sup:start_child(Spec),
    ?assertError({start_child_failed, {error, {already_started, Pid}}, Spec},
                 ejabberd_sup:start_child(Spec)),
    ok = ejabberd_sup:stop_child(fixture_child),
    ?assertNot(is_process_alive(Pid)),
    run_in_process(fun() -> ejabberd_sup:create_ets_table(fixture_table, [named_table, public]) end),
    ?assertEqual(whereis(ejabberd_sup), ets:info(fixture_table, owner)).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Runs F in a new process and waits until that process has exited.
run_in_process(F) ->
    {Pid, MRef} = spawn_monitor(F),
    receive {'DOWN', MRef, process, Pid, normal} -> ok end.

tag_handler(Tag, Prio) ->
    {?HOOK, ?STATIC, fun host_fixture_log:append_tag/3, #{tag => Tag}, Prio}.

add_and_reload(Handlers) ->
    ok = gen_hook:add_handlers(Handlers),
    ok = gen_hook:reload_hooks().

set_modules(HostType, Modules) ->
    mongoose_config:set_opt({modules, HostType}, Modules).

started_and_stopped() ->
    [{element(1, E), element(2, E)} || E <- host_fixture_log:entries()].

new_acc() ->
    El = #xmlel{name = <<"message">>, attrs = #{<<"type">> => <<"chat">>}},
    mongoose_acc:new(#{location => ?LOCATION, lserver => ?STATIC, host_type => ?STATIC,
                       element => El, from_jid => jid:make(<<"a">>, ?STATIC, <<"r">>),
                       to_jid => jid:make(<<"b">>, ?STATIC, <<>>)}).

sample_message() ->
    #xmlel{name = <<"message">>,
           attrs = #{<<"type">> => <<"chat">>, <<"to">> => <<"b@static.test">>},
           children = [#xmlel{name = <<"body">>, children = [#xmlcdata{content = <<"hello">>}]},
                       #xmlel{name = <<"x">>, attrs = #{<<"xmlns">> => <<"urn:x">>,
                                                          <<"node">> => <<"n1">>}},
                       #xmlel{name = <<"body">>, children = [#xmlcdata{content = <<"again">>}]}]}.

%% Captures log events of this test case (logger handler callback below).
capture_logs() ->
    Self = self(),
    logger:remove_handler(?MODULE),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => Self}, level => all}).

log(#{msg := {report, Report}}, #{config := #{pid := Pid}}) ->
    Pid ! {captured_log, Report};
log(_Event, _Config) ->
    ok.

wait_for_log(What) ->
    receive
        {captured_log, #{what := What} = Report} ->
            logger:remove_handler(?MODULE),
            Report
    after 5000 ->
            logger:remove_handler(?MODULE),
            ct:fail({log_not_seen, What})
    end.

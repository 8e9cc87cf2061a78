%% @doc Test host: helpers for building and reporting on config specs.
-module(mongoose_config_utils).

-export([exit_or_halt/1, section_to_defaults/1, merge_sections/2]).

-include("mongoose_config_spec.hrl").

%% @doc The test host never halts the node on a bad config: the caller
%% (a suite or the demo) gets an exit it can report.
-spec exit_or_halt(string()) -> no_return().
exit_or_halt(ExitText) ->
    exit(ExitText).

%% @doc The defaults of a section, keyed by TOML names.
-spec section_to_defaults(mongoose_config_spec:config_section()) -> #{binary() => term()}.
section_to_defaults(#section{defaults = Defaults}) ->
    Defaults.

%% @doc Extends a section with the items, required keys, defaults and process
%% steps of another; the other fields are those of the first.
-spec merge_sections(mongoose_config_spec:config_section(),
                     mongoose_config_spec:config_section()) ->
          mongoose_config_spec:config_section().
merge_sections(Basic = #section{items = Items1, required = Required1,
                                defaults = Defaults1, process = Process1},
               #section{items = Items2, required = Required2,
                        defaults = Defaults2, process = Process2}) ->
    Basic#section{items = maps:merge(Items1, Items2),
                  required = merge_required(Required1, Required2),
                  defaults = maps:merge(Defaults1, Defaults2),
                  process = lists:flatten([Process1, Process2])}.

%% `all' stays `all' only if both sides say so; otherwise keys are listed.
merge_required(all, all) -> all;
merge_required(L1, L2) when is_list(L1), is_list(L2) -> L1 ++ L2.


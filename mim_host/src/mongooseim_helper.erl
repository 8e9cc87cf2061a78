%% @doc MongooseIM's unit-test helper of the same name: starts `gen_hook'
%% linked to the caller (typically a process kept by `async_helper') and
%% publishes its (empty) hook table at once, so that `gen_hook:run_fold/4'
%% works before any handler is added.
-module(mongooseim_helper).

-export([start_link_loaded_hooks/0]).

-spec start_link_loaded_hooks() -> gen_server:start_ret().
start_link_loaded_hooks() ->
    Result = gen_hook:start_link(),
    ok = gen_hook:reload_hooks(),
    Result.

%% @doc The test host's `mongoose_iq_handler': an IQ handler fun with its
%% extra map and execution type (`iqdisc'), as in MongooseIM:
%% `no_queue' runs in the routing process, `parallel' in a new process,
%% `one_queue' in one worker of its own, `{queues, N}' in one of N workers
%% picked at random. The handler returns `{Acc, ignore}' or `{Acc, IQ}', the
%% IQ then routed back to the sender; a crash replies `internal-server-error'.
-module(mongoose_iq_handler).

-export([new/3, delete/1, process_iq/5, add_extra/2, execute_handler/5, module/1, extra/1]).

-include("jlib.hrl").
-include("mongoose.hrl").

-record(iq_handler, {handler_fn :: handler_fn(),
                     extra :: map(),
                     execution_method :: execution_method()}).

-type handler_fn() :: fun((mongoose_acc:t(), jid:jid(), jid:jid(), jlib:iq(), map()) ->
                                 {mongoose_acc:t(), ignore | jlib:iq()}).
-type execution_method() :: no_queue | parallel | {one_queue, pid()} | {queues, [pid()]}.
-type execution_type() :: no_queue | parallel | one_queue | {queues, pos_integer()}.
-opaque t() :: #iq_handler{}.
-export_type([t/0, handler_fn/0, execution_type/0]).

-spec new(handler_fn(), map(), execution_type()) -> t().
new(HandlerFn, Extra, ExecutionType) ->
    #iq_handler{handler_fn = HandlerFn, extra = Extra,
                execution_method = execution_method(ExecutionType)}.

%% @doc Stops the handler's workers.
-spec delete(t()) -> ok.
delete(#iq_handler{execution_method = {one_queue, Pid}}) ->
    mongoose_iq_worker:stop(Pid);
delete(#iq_handler{execution_method = {queues, Pids}}) ->
    lists:foreach(fun mongoose_iq_worker:stop/1, Pids);
delete(#iq_handler{}) ->
    ok.

-spec module(t()) -> module().
module(#iq_handler{handler_fn = Fn}) ->
    {module, Module} = erlang:fun_info(Fn, module),
    Module.

-spec extra(t()) -> map().
extra(#iq_handler{extra = Extra}) ->
    Extra.

%% @doc Keys already in the handler's extra win.
-spec add_extra(t(), map()) -> t().
add_extra(#iq_handler{extra = Old} = Handler, Extra) ->
    Handler#iq_handler{extra = maps:merge(Extra, Old)}.

-spec process_iq(t(), mongoose_acc:t(), jid:jid(), jid:jid(), jlib:iq()) -> mongoose_acc:t().
process_iq(#iq_handler{execution_method = no_queue} = Handler, Acc, From, To, IQ) ->
    ?MODULE:execute_handler(Handler, Acc, From, To, IQ);
process_iq(#iq_handler{execution_method = parallel} = Handler, Acc, From, To, IQ) ->
    _ = spawn(?MODULE, execute_handler, [Handler, Acc, From, To, IQ]),
    Acc;
process_iq(#iq_handler{execution_method = Queued} = Handler, Acc, From, To, IQ) ->
    mongoose_iq_worker:process_iq(worker_for(Queued), Handler, Acc, From, To, IQ),
    Acc.

%% With several queues, each IQ goes to one of them at random.
-spec worker_for({one_queue, pid()} | {queues, [pid()]}) -> pid().
worker_for({one_queue, Worker}) ->
    Worker;
worker_for({queues, Workers}) ->
    lists:nth(rand:uniform(length(Workers)), Workers).

%% @doc Runs the handler function and routes its answer back to the sender;
%% a crashing handler answers `internal-server-error'.
-spec execute_handler(t(), mongoose_acc:t(), jid:jid(), jid:jid(), jlib:iq()) ->
          mongoose_acc:t().
execute_handler(#iq_handler{handler_fn = Fn, extra = Extra}, Acc, From, To, IQ) ->
    case call_handler_fn(Fn, [Acc, From, To, IQ, Extra]) of
        {returned, {NewAcc, ignore}} ->
            NewAcc;
        {returned, {NewAcc, Reply}} ->
            reply(From, To, NewAcc, Reply);
        {crashed, Crash} ->
            ?LOG_WARNING(Crash#{what => process_iq_error, from_jid => jid:to_binary(From),
                                to_jid => jid:to_binary(To), iq => IQ}),
            reply(From, To, Acc, internal_error(IQ))
    end.

-spec call_handler_fn(function(), list()) -> {returned, term()} | {crashed, map()}.
call_handler_fn(Fn, Args) ->
    try
        {returned, apply(Fn, Args)}
    catch
        Class:Reason:Stacktrace ->
            {crashed, #{class => Class, reason => Reason, stacktrace => Stacktrace}}
    end.

%% The request's payload is echoed back with the error, as XMPP suggests.
-spec internal_error(jlib:iq()) -> jlib:iq().
internal_error(#iq{sub_el = Payload} = IQ) ->
    Text = <<"The server could not process the IQ stanza">>,
    IQ#iq{type = error, sub_el = [Payload, mongoose_xmpp_errors:internal_server_error(Text)]}.

-spec reply(jid:jid(), jid:jid(), mongoose_acc:t(), jlib:iq()) -> mongoose_acc:t().
reply(From, To, Acc, Reply) ->
    mongoose_router:route(mongoose_acc:update(To, From, jlib:iq_to_xml(Reply), Acc)).

-spec execution_method(execution_type()) -> execution_method().
execution_method(no_queue) -> no_queue;
execution_method(parallel) -> parallel;
execution_method(one_queue) -> {one_queue, start_worker()};
execution_method({queues, N}) -> {queues, [start_worker() || _ <- lists:seq(1, N)]}.

-spec start_worker() -> pid().
start_worker() ->
    {ok, Pid} = mongoose_iq_worker:start(),
    Pid.

<?php
/**
 * Runs the Paymenter extension outside Paymenter against a gateway, with a stand-in for
 * Paymenter's base class:   PANELQL_URL=… PANELQL_API_KEY=… php examples/paymenter/run_flow.php
 */

namespace App\Classes\Extension {
    class Server
    {
        public function __construct(private array $settings) {}

        public function config($key) { return $this->settings[$key] ?? null; }
    }
}

namespace Illuminate\Support\Facades {
    /** Laravel's cache, as the extension uses it, kept in memory for this run. */
    class Cache
    {
        private static array $items = [];

        public static function get($key) { return self::$items[$key] ?? null; }

        public static function put($key, $value, $ttl) { self::$items[$key] = $value; }

        public static function forget($key) { unset(self::$items[$key]); }
    }
}

namespace {
    require __DIR__ . '/PanelQL.php';

    function suspended($extension, $id)
    {
        $call = new ReflectionMethod($extension, 'graphql');
        return $call->invoke($extension, 'query($id: ID!) { server(id: $id) { suspended } }',
                             ['id' => $id])['server']['suspended'];
    }

    $extension = new Paymenter\Extensions\Servers\PanelQL\PanelQL([
        'url' => getenv('PANELQL_URL') ?: 'http://127.0.0.1:8000/graphql',
        'api_key' => getenv('PANELQL_API_KEY'),
    ]);
    $service = (object) ['id' => getenv('SERVICE_ID') ?: (string) random_int(1000, 999999)];
    $settings = ['provider' => getenv('PANELQL_PROVIDER') ?: 'catalyst-main', 'region' => 'us-east',
                 'memory' => 2048, 'cpu' => 1, 'disk' => 10240];

    try {
        $ok = $extension->testConfig();
        if ($ok !== true) {
            throw new Exception("testConfig: $ok");
        }
        $properties = $extension->createServer($service, $settings, []);
        echo "ok   createServer {$properties['panelql_server_id']}\n";
        $id = $properties['panelql_server_id'];
        $action = $extension->getActions($service, $settings, $properties)[0];
        // catalyst-main has no login links: the client area shows PanelQL's reason instead.
        echo 'ok   getActions: ' . ($action['type'] === 'button' ? 'login button'
                                    : $action['text']) . "\n";
        foreach (['first', 'again'] as $round) {  // suspend, unsuspend, suspend: each happens
            $extension->suspendServer($service, $settings, $properties);
            if (!suspended($extension, $id)) {
                throw new Exception("suspendServer ($round) left the server running");
            }
            echo "ok   suspendServer ($round)\n";
            $extension->unsuspendServer($service, $settings, $properties);
            if (suspended($extension, $id)) {
                throw new Exception("unsuspendServer ($round) left the server suspended");
            }
            echo "ok   unsuspendServer ($round)\n";
        }
        $extension->upgradeServer($service, ['memory' => 4096] + $settings, $properties);
        echo "ok   upgradeServer\n";
        $extension->terminateServer($service, $settings, $properties);
        echo "ok   terminateServer\nPaymenter flow done for service {$service->id}\n";
    } catch (Exception $e) {
        echo 'FAIL ' . $e->getMessage() . "\n";
        exit(1);
    }
}

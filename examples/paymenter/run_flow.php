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

namespace {
    require __DIR__ . '/PanelQL.php';

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
        $extension->suspendServer($service, $settings, $properties);
        echo "ok   suspendServer\n";
        $extension->unsuspendServer($service, $settings, $properties);
        echo "ok   unsuspendServer\n";
        $extension->upgradeServer($service, ['memory' => 4096] + $settings, $properties);
        echo "ok   upgradeServer\n";
        $extension->terminateServer($service, $settings, $properties);
        echo "ok   terminateServer\nPaymenter flow done for service {$service->id}\n";
    } catch (Exception $e) {
        echo 'FAIL ' . $e->getMessage() . "\n";
        exit(1);
    }
}
